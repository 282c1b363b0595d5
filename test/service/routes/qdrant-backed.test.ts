// The HTTP contract once more with the Qdrant adapter behind it (talking to the strict Qdrant double),
// including a Qdrant outage: 503 while it is down, normal service once it is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQdrantStore } from '../../../service/src/store/qdrant/store.js';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';
import { QdrantDouble } from '../../support/qdrant-double.js';

let double: QdrantDouble;
let t: TestApp;
beforeAll(async () => {
  double = await QdrantDouble.start({ apiKey: 'qdrant-secret' });
  t = await startTestApp({
    env: { QDRANT_URL: double.url, QDRANT_API_KEY: 'qdrant-secret' },
    store: (config) => createQdrantStore({ url: config.qdrantUrl!, apiKey: config.qdrantApiKey, timeoutMs: 2000 }),
  });
});
afterAll(async () => {
  await t.close();
  try {
    double.assertNoViolations();
    expect(double.unwaitedWrites()).toEqual([]);
  } finally {
    await double.close();
  }
});

const post = async (url: string, fields: Record<string, string>, bytes?: Buffer) =>
  t.app.inject({ method: 'POST', url, ...(await multipart(fields, bytes && { bytes })) });

describe('API on Qdrant', () => {
  it('ingests, groups search results per item, reads, deletes', async () => {
    expect(
      (await post('/ingest', { item_id: 'q/1', item_name: 'One' }, await images.jpeg(300, 200, 1))).statusCode,
    ).toBe(201);
    expect((await post('/ingest', { item_id: 'q/1' }, await images.jpeg(300, 200, 2))).statusCode).toBe(409);
    expect((await post('/items/q%2F1/images', {}, await images.jpeg(300, 200, 3))).statusCode).toBe(201);
    expect((await post('/ingest', { item_id: 'q/2' }, await images.jpeg(300, 200, 40))).statusCode).toBe(201);

    const search = await post('/search', { top_k: '5' }, await images.jpeg(300, 200, 3));
    expect(search.statusCode).toBe(200);
    const results = search.json().results as Array<{ item_id: string; score: number }>;
    expect(results.map((r) => r.item_id)).toEqual(['q/1', 'q/2']);
    expect(results[0].score).toBeGreaterThan(0.99);

    const item = await t.app.inject({ method: 'GET', url: '/items/q%2F1' });
    expect(item.json().images).toHaveLength(2);
    expect((await t.app.inject({ method: 'DELETE', url: '/items/q%2F1' })).json()).toEqual({
      item_id: 'q/1',
      deleted_images: 2,
    });
    expect((await t.app.inject({ method: 'GET', url: '/items/q%2F1' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'DELETE', url: '/items' })).json()).toEqual({ deleted_images: 1 });
    expect((await t.app.inject({ method: 'GET', url: '/ready' })).json()).toMatchObject({
      store: 'qdrant',
      collection: 'items_test_model_64',
    });
  });

  it('answers 503 while Qdrant is down and recovers when it is back', async () => {
    await double.goDown('refuse');
    try {
      const bytes = await images.jpeg(200, 150, 5);
      for (const url of ['/search', '/ingest']) {
        const response = await post(url, { item_id: 'down' }, bytes);
        expect(response.statusCode, url).toBe(503);
        expect(response.json()).toMatchObject({
          error: 'store_unavailable',
          message: expect.stringContaining('QDRANT_URL'),
        });
      }
      expect((await t.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(503);
      expect((await t.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    } finally {
      await double.up();
    }
    expect((await post('/ingest', { item_id: 'back' }, await images.jpeg(200, 150, 6))).statusCode).toBe(201);
  });
});
