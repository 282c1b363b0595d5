// Teaching the catalog, on both stores: the first staff photo added to an item (kind `photo`, alone of its
// kind in the catalog) must not change how other photos rank, and searching with that very photo finds its
// item first; once several items have photos, their photos count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, type TestApp } from '../../support/app.js';
import { STORES } from '../../scripts/helpers.js';

describe.each(STORES)('teaching with photos on the $kind store', (setup) => {
  let t: TestApp;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ t, close } = await setup.start());
    for (let i = 1; i <= 6; i++) {
      const response = await post('/ingest', { item_id: `ITEM-${i}` }, await images.jpeg(400, 300, i * 7));
      expect(response.statusCode).toBe(201);
    }
  });
  afterAll(async () => {
    await close();
  });

  async function post(url: string, fields: Record<string, string>, bytes: Buffer) {
    return t.app.inject({ method: 'POST', url, ...(await multipart(fields, { bytes })) });
  }
  const ranking = async (bytes: Buffer) =>
    ((await post('/search', { top_k: '6' }, bytes)).json() as { results: Array<{ item_id: string; score: number }> })
      .results;

  it("the first photo leaves other queries' ranking as it was, and finds itself", async () => {
    const queries = await Promise.all([101, 102, 103].map((seed) => images.jpeg(300, 300, seed)));
    const before = await Promise.all(queries.map(ranking));
    const photo = await images.jpeg(320, 240, 200);
    expect((await post('/items/ITEM-3/images', { kind: 'photo' }, photo)).statusCode).toBe(201);
    const after = await Promise.all(queries.map(ranking));
    after.forEach((rows, i) => {
      expect(rows.map((r) => r.item_id)).toEqual(before[i].map((r) => r.item_id));
      rows.forEach((r, j) => expect(r.score).toBeCloseTo(before[i][j].score, 6));
    });
    const self = await ranking(photo);
    expect(self[0].item_id).toBe('ITEM-3');
  });
});
