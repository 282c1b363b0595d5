// `ops duplicates` over a whole catalog, on both stores: every pair of items sharing a picture (same bytes,
// resized, cropped, re-encoded) is listed once, with the right reason; different pictures and the images
// of one item are not; the table lists them. Runs the command's function on a store an API filled.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogDuplicates } from '../../service/src/catalog/duplicates.js';
import { ImageFiles } from '../../service/src/catalog/image-files.js';
import * as images from '../support/images.js';
import { multipart, type TestApp } from '../support/app.js';
import { STORES } from './helpers.js';

describe.each(STORES)('ops duplicates on the $kind store', (setup) => {
  let t: TestApp;
  let close: () => Promise<void>;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    ({ t, close } = await setup.start());
    const original = await images.jpeg(480, 360, 31);
    const upload = async (url: string, fields: Record<string, string>, bytes: Buffer, name: string) => {
      const response = await t.app.inject({ method: 'POST', url, ...(await multipart(fields, { bytes })) });
      expect(response.statusCode, response.body).toBe(201);
      ids[name] = (response.json() as { image_id: string }).image_id;
    };
    await upload('/ingest', { item_id: 'A' }, original, 'a');
    await upload('/ingest', { item_id: 'B' }, original, 'b');
    await upload(
      '/ingest',
      { item_id: 'C' },
      await sharp(original).resize(432, 324).jpeg({ quality: 80 }).toBuffer(),
      'c',
    );
    // A second image of A that is a copy of its first: one item, so not a pair.
    await upload('/items/A/images', {}, await sharp(original).png().toBuffer(), 'a2');
    for (let seed = 40; seed < 44; seed++)
      await upload('/ingest', { item_id: `D${seed}` }, await images.jpeg(480, 360, seed), `d${seed}`);
  });
  afterAll(async () => {
    await close();
  });

  it('lists every pair of different items once, best first, with its reason', async () => {
    const warnings: string[] = [];
    let done = 0;
    const pairs = await catalogDuplicates(
      t.store.collection(t.config.collection),
      new ImageFiles(t.config.imageStorageDir),
      { warn: (m) => warnings.push(m), progress: (n) => (done = n), pageSize: 3 },
    );
    expect(warnings).toEqual([]);
    expect(done).toBe(8);
    const summary = pairs.map((p) => [[p.item_a, p.item_b].sort().join('-'), p.reason]).sort();
    // C's copy is found from A's best image; A's second image (the PNG) is a near copy of B's and C's.
    expect(new Set(summary.map(([pair]) => pair))).toEqual(new Set(['A-B', 'A-C', 'B-C']));
    expect(summary).toContainEqual(['A-B', 'same_bytes']);
    expect(summary.filter(([, reason]) => reason === 'same_bytes')).toHaveLength(1);
    for (const pair of pairs) {
      expect(pair.item_a).not.toBe(pair.item_b);
      expect(pair.score).toBeGreaterThan(0);
      expect(pair.score).toBeLessThanOrEqual(1);
    }
    const keys = pairs.map((p) => `${p.image_a} ${p.image_b}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (let i = 1; i < pairs.length; i++) expect(pairs[i - 1].score).toBeGreaterThanOrEqual(pairs[i].score);
  });
});
