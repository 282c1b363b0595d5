import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { IMAGE_SEARCH_API_KEY: 'correct horse battery staple' } });
});
afterAll(() => t.close());

describe('Image-Search-Api-Key', () => {
  const routes: Array<[string, string]> = [
    ['GET', '/ready'],
    ['POST', '/ingest'],
    ['POST', '/search'],
    ['POST', '/embed'],
    ['GET', '/items/x'],
    ['POST', '/items/x/images'],
    ['DELETE', '/items/x'],
    ['DELETE', '/items'],
  ];
  for (const [method, url] of routes) {
    it(`401 on ${method} ${url} without the key, and with a wrong one`, async () => {
      for (const headers of [
        {},
        { 'image-search-api-key': 'wrong' },
        { 'image-search-api-key': 'correct horse battery staple!' },
      ]) {
        const response = await t.app.inject({ method: method as 'GET', url, headers });
        expect(response.statusCode).toBe(401);
        expect(response.json()).toMatchObject({
          error: 'unauthorized',
          message: expect.stringContaining('Image-Search-Api-Key'),
        });
      }
    });
  }

  it('lets the right key through', async () => {
    const body = await multipart({ item_id: 'k' }, { bytes: await images.jpeg(100, 100) });
    const response = await t.app.inject({
      method: 'POST',
      url: '/ingest',
      payload: body.payload,
      headers: { ...body.headers, 'Image-Search-Api-Key': 'correct horse battery staple' },
    });
    expect(response.statusCode).toBe(201);
  });

  it('does not destroy the data when DELETE /items comes without the key', async () => {
    await t.app.inject({ method: 'DELETE', url: '/items' });
    expect(await t.store.collection('items').count()).toBeGreaterThan(0);
  });
});
