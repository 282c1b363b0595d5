// Duplicate warnings on ingest and add image, on both stores: the same bytes or the same picture resized,
// re-encoded or cropped under ANOTHER item is reported in the answer (and nothing is refused); a different
// picture, or the item's own images, are not. The candidates come from the real store, the decision from
// the near-copy check on the stored originals.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, type TestApp } from '../../support/app.js';
import { STORES } from '../../scripts/helpers.js';
import { DUPLICATE_MIN_COSINE } from '../../../service/src/catalog/duplicates.js';

describe.each(STORES)('duplicate warnings on the $kind store', (setup) => {
  let t: TestApp;
  let close: () => Promise<void>;
  let original: Buffer;
  let originalId: string;
  beforeAll(async () => {
    ({ t, close } = await setup.start());
    original = await images.jpeg(640, 480, 11);
  });
  afterAll(async () => {
    await close();
  });

  const post = async (url: string, fields: Record<string, string>, bytes: Buffer) => {
    const response = await t.app.inject({ method: 'POST', url, ...(await multipart(fields, { bytes })) });
    return { status: response.statusCode, body: response.json() };
  };
  const ingest = (itemId: string, bytes: Buffer) => post('/ingest', { item_id: itemId }, bytes);
  const reported = (body: { duplicates: Array<{ item_id: string; reason: string }> }) =>
    body.duplicates.map((d) => [d.item_id, d.reason]).sort();

  it('a first image has no duplicates; a different picture under another item has none either', async () => {
    const first = await ingest('MILK-1', original);
    expect(first.status).toBe(201);
    expect(first.body.duplicates).toEqual([]);
    originalId = first.body.image_id;
    for (let seed = 20; seed < 24; seed++) {
      const other = await ingest(`OTHER-${seed}`, await images.jpeg(640, 480, seed));
      expect(other.status).toBe(201);
      expect(other.body.duplicates).toEqual([]);
    }
  });

  it('the same bytes under another item: stored, and reported as same_bytes with score 1', async () => {
    const copy = await ingest('MILK-2', original);
    expect(copy.status).toBe(201);
    expect(copy.body.duplicates).toEqual([
      { item_id: 'MILK-1', image_id: originalId, score: expect.closeTo(1, 4), reason: 'same_bytes' },
    ]);
  });

  it('a 90 % resize at JPEG quality 80 and a light crop under another item are near copies', async () => {
    const resized = await sharp(original).resize(576, 432).jpeg({ quality: 80 }).toBuffer();
    const a = await ingest('MILK-3', resized);
    expect(a.status).toBe(201);
    expect(reported(a.body)).toEqual([
      ['MILK-1', 'near_copy'],
      ['MILK-2', 'near_copy'],
    ]);
    const cropped = await sharp(original)
      .extract({ left: 32, top: 24, width: 576, height: 432 })
      .webp({ quality: 75 })
      .toBuffer();
    const b = await ingest('MILK-4', cropped);
    expect(reported(b.body)).toEqual([
      ['MILK-1', 'near_copy'],
      ['MILK-2', 'near_copy'],
      ['MILK-3', 'near_copy'],
    ]);
  });

  it("add image: other items' copies are reported, the item's own are not; a re-send answers the same", async () => {
    const png = await sharp(original).png().toBuffer();
    const added = await post('/items/MILK-1/images', { kind: 'photo' }, png);
    expect(added.status).toBe(201);
    const items = reported(added.body).map(([item]) => item);
    expect(items).toEqual(['MILK-2', 'MILK-3', 'MILK-4']);
    const again = await post('/items/MILK-1/images', { kind: 'photo' }, png);
    expect(again.status).toBe(200);
    expect(again.body.image_id).toBe(added.body.image_id);
    expect(reported(again.body)).toEqual(reported(added.body));
  });

  it('a picture that differs in one region (another flavour label) is not a copy', async () => {
    const patch = await sharp({
      create: { width: 150, height: 130, channels: 3, background: { r: 230, g: 30, b: 40 } },
    })
      .png()
      .toBuffer();
    const flavour = await sharp(original)
      .composite([{ input: patch, left: 220, top: 150 }])
      .jpeg({ quality: 90 })
      .toBuffer();
    // The embedding alone would take it for a copy: the near-copy check is what says no.
    const embedded = await post('/embed', {}, flavour);
    const [nearest] = await t.store
      .collection(t.config.collection)
      .searchItems(Float32Array.from(embedded.body.vector as number[]), 1);
    expect(nearest.record.item_id).toMatch(/^MILK-/);
    expect(nearest.score).toBeGreaterThanOrEqual(DUPLICATE_MIN_COSINE);
    const other = await ingest('MILK-STRAWBERRY', flavour);
    expect(other.status).toBe(201);
    expect(other.body.duplicates).toEqual([]);
  });
});
