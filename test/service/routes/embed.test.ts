import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('POST /embed', () => {
  it('returns model, width and exactly the vector the service stores for that image', async () => {
    const bytes = await images.jpeg(500, 400, 12);
    const embedded = await t.app.inject({ method: 'POST', url: '/embed', ...(await multipart({}, { bytes })) });
    expect(embedded.statusCode).toBe(200);
    const body = embedded.json() as { model: string; dim: number; vector: number[] };
    expect(body.model).toBe('test_model');
    expect(body.dim).toBe(64);
    expect(body.vector).toHaveLength(64);
    expect(Math.hypot(...body.vector)).toBeCloseTo(1, 5);

    await t.app.inject({ method: 'POST', url: '/ingest', ...(await multipart({ item_id: 'e' }, { bytes })) });
    const page = await t.store.collection('items').scroll({ limit: 10, withVectors: true });
    const stored = page.points.find((p) => p.record.item_id === 'e')!.vector!;
    // Exactly: each number reads back as the stored float32.
    expect(body.vector.map((value) => Math.fround(value))).toEqual(Array.from(stored));
    expect(embedded.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('415 for a non-image', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/embed',
      ...(await multipart({}, { bytes: Buffer.from('nope nope nope') })),
    });
    expect(response.statusCode).toBe(415);
    expect(response.json()).toMatchObject({ error: 'unsupported_image' });
  });
});
