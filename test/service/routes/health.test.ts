import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('health and readiness', () => {
  it('GET /health is 200 {"status":"ok"} without a key even when one is required', async () => {
    t = await startTestApp({ env: { IMAGE_SEARCH_API_KEY: 'secret-key' } });
    const response = await t.app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('GET /ready is 200 with store, collection and model when both answer', async () => {
    t = await startTestApp();
    const response = await t.app.inject({ method: 'GET', url: '/ready' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ready',
      store: 'embedded',
      collection: 'items_test_model_64',
      model: 'test_model',
      model_sha256: createHash('sha256').update(readFileSync(t.config.modelPath)).digest('hex'),
      dim: 64,
    });
  });

  it('503 from /ready, /ingest and /search when the store is down; /health stays 200', async () => {
    t = await startTestApp();
    await t.store.close(); // the database is gone from under the running service
    const ready = await t.app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ error: 'not_ready', message: expect.stringContaining('embedded database') });
    const bytes = await images.jpeg(100, 100);
    for (const url of ['/ingest', '/search']) {
      const response = await t.app.inject({ method: 'POST', url, ...(await multipart({ item_id: 'x' }, { bytes })) });
      expect(response.statusCode, url).toBe(503);
      expect(response.json()).toMatchObject({ error: 'store_unavailable' });
      expect(response.headers['retry-after']).toBe('5');
    }
    expect((await t.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});
