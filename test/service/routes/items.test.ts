import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

async function ingest(itemId: string, seed: number) {
  const response = await t.app.inject({
    method: 'POST',
    url: '/ingest',
    ...(await multipart(
      { item_id: itemId, item_name: `Name ${itemId}`, item_code: `C-${itemId}` },
      { bytes: await images.jpeg(200, 150, seed) },
    )),
  });
  expect(response.statusCode).toBe(201);
  return response.json() as { image_id: string };
}
const addImage = async (itemId: string, bytes: Buffer) =>
  t.app.inject({
    method: 'POST',
    url: `/items/${encodeURIComponent(itemId)}/images`,
    ...(await multipart({}, { bytes })),
  });
const filePath = (relative: string) => path.join(t.config.imageStorageDir, relative);

describe('item routes', () => {
  it('POST /items/{id}/images adds an image to an existing item (201), keeping its name and code', async () => {
    const first = await ingest('shelf/1', 1);
    const response = await addImage('shelf/1', await images.png(300, 200, 2));
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ item_id: 'shelf/1', item_name: 'Name shelf/1', item_code: 'C-shelf/1' });
    expect(response.json().image_id).not.toBe(first.image_id);

    const item = await t.app.inject({ method: 'GET', url: '/items/shelf%2F1' });
    expect(item.statusCode).toBe(200);
    const body = item.json();
    expect(body).toMatchObject({ item_id: 'shelf/1', item_name: 'Name shelf/1', item_code: 'C-shelf/1' });
    expect(body.images.map((i: { image_id: string }) => i.image_id)).toEqual([
      first.image_id,
      response.json().image_id,
    ]);
    expect(body.images[0]).toEqual({
      image_id: first.image_id,
      kind: 'catalog',
      source: 'api',
      source_ref: null,
      bytes: expect.any(Number),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      phash: expect.stringMatching(/^[0-9a-f]{16}$/),
      model: 'test_model',
      created_at: expect.any(String),
    });
  });

  it('404 for adding an image to, reading or deleting an unknown item', async () => {
    const responses = [
      await addImage('nope', await images.jpeg(64, 64)),
      await t.app.inject({ method: 'GET', url: '/items/nope' }),
      await t.app.inject({ method: 'DELETE', url: '/items/nope' }),
    ];
    for (const response of responses) {
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ error: 'item_not_found' });
    }
  });

  it('DELETE /items/{id} removes every point and every file of the item, and only of that item', async () => {
    await ingest('gone', 3);
    await addImage('gone', await images.jpeg(200, 150, 4));
    await ingest('kept', 5);
    const goneFiles = (await t.store.collection('items').itemImages('gone')).map((r) => r.file);
    const keptFiles = (await t.store.collection('items').itemImages('kept')).map((r) => r.file);
    goneFiles.forEach((file) => expect(existsSync(filePath(file))).toBe(true));

    const response = await t.app.inject({ method: 'DELETE', url: '/items/gone' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ item_id: 'gone', deleted_images: 2 });
    expect(await t.store.collection('items').itemImages('gone')).toEqual([]);
    goneFiles.forEach((file) => expect(existsSync(filePath(file))).toBe(false));
    expect(existsSync(path.dirname(filePath(goneFiles[0])))).toBe(false);
    keptFiles.forEach((file) => expect(existsSync(filePath(file))).toBe(true));
    const search = await t.app.inject({
      method: 'POST',
      url: '/search',
      ...(await multipart({ top_k: '50' }, { bytes: await images.jpeg(200, 150, 3) })),
    });
    expect(search.json().results.map((r: { item_id: string }) => r.item_id)).not.toContain('gone');
  });

  it('DELETE /items removes all points and all files', async () => {
    await ingest('a', 6);
    await ingest('b', 7);
    const total = await t.store.collection('items').count();
    const response = await t.app.inject({ method: 'DELETE', url: '/items' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ deleted_images: total });
    expect(await t.store.collection('items').count()).toBe(0);
    expect(readdirSync(t.config.imageStorageDir).filter((entry) => !entry.startsWith('.'))).toEqual([]);
    const search = await t.app.inject({
      method: 'POST',
      url: '/search',
      ...(await multipart({}, { bytes: await images.jpeg(200, 150, 6) })),
    });
    expect(search.json()).toEqual({ match: 'none', results: [] });
    // and the service keeps working afterwards
    await ingest('a', 6);
  });
});
