// Idempotent images and item updates, on both stores (embedded, and Qdrant through its strict double):
// the same bytes sent twice to one item give one image with one id (200 the second time); PATCH changes
// what GET /items and /search return without touching the vectors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, type TestApp } from '../../support/app.js';
import { STORES } from '../../scripts/helpers.js';
import type { QdrantDouble } from '../../support/qdrant-double.js';

describe.each(STORES)('on the $kind store', (setup) => {
  let t: TestApp;
  let double: QdrantDouble | undefined;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ t, double, close } = await setup.start());
  });
  afterAll(async () => {
    await close();
  });

  const post = async (url: string, fields: Record<string, string>, bytes: Buffer) =>
    t.app.inject({ method: 'POST', url, ...(await multipart(fields, { bytes })) });
  const vectors = async (itemId: string) => {
    const all: Array<[string, number[]]> = [];
    for (let after: string | undefined; ;) {
      const page = await t.store.collection(t.config.collection).scroll({ after, limit: 100, withVectors: true });
      for (const point of page.points)
        if (point.record.item_id === itemId) all.push([point.record.image_id, Array.from(point.vector!)]);
      if (!page.next) return all.sort();
      after = page.next;
    }
  };

  it('the same image twice gives one image with the same id; other bytes still add or conflict', async () => {
    const photo = await images.jpeg(200, 150, 7);
    const first = await post('/ingest', { item_id: 'idem', item_name: 'Idem' }, photo);
    expect(first.statusCode).toBe(201);
    const retried = await post('/ingest', { item_id: 'idem', item_name: 'Idem' }, photo);
    expect(retried.statusCode).toBe(200);
    expect(retried.json().image_id).toBe(first.json().image_id);
    const again = await post('/items/idem/images', {}, photo);
    expect(again.statusCode).toBe(200);
    expect(again.json().image_id).toBe(first.json().image_id);
    expect((await post('/ingest', { item_id: 'idem' }, await images.jpeg(200, 150, 8))).statusCode).toBe(409);
    const other = await post('/items/idem/images', {}, await images.jpeg(200, 150, 9));
    expect(other.statusCode).toBe(201);
    const item = (await t.app.inject({ method: 'GET', url: '/items/idem' })).json();
    expect(item.images).toHaveLength(2);
    // Concurrent duplicates of one new image: one image in the end.
    const photo2 = await images.jpeg(200, 150, 10);
    const answers = await Promise.all([1, 2, 3].map(() => post('/items/idem/images', {}, photo2)));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 200, 201]);
    expect(new Set(answers.map((a) => a.json().image_id)).size).toBe(1);
    expect((await t.app.inject({ method: 'GET', url: '/items/idem' })).json().images).toHaveLength(3);
  });

  it('PATCH changes the name and code on every image; GET and search show it; vectors stay', async () => {
    const photo = await images.jpeg(200, 150, 21);
    await post('/ingest', { item_id: 'patch-me', item_name: 'Old', item_code: 'OLD-1', item_group: 'Juice' }, photo);
    await post('/items/patch-me/images', {}, await images.jpeg(200, 150, 22));
    const before = await vectors('patch-me');
    const patched = await t.app.inject({
      method: 'PATCH',
      url: '/items/patch-me',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ item_name: 'New name', item_code: null }),
    });
    expect(patched.statusCode, patched.body).toBe(200);
    // Only the fields named change: the group stays.
    expect(patched.json()).toMatchObject({
      item_id: 'patch-me',
      item_name: 'New name',
      item_code: null,
      item_group: 'Juice',
    });
    expect(patched.json().images).toHaveLength(2);
    const item = (await t.app.inject({ method: 'GET', url: '/items/patch-me' })).json();
    expect(item).toMatchObject({ item_name: 'New name', item_code: null });
    const search = await post('/search', { top_k: '3' }, photo);
    expect(search.json().results[0]).toMatchObject({ item_id: 'patch-me', item_name: 'New name', item_code: null });
    for (const image of await t.store.collection(t.config.collection).itemImages('patch-me')) {
      expect(image).toMatchObject({ item_name: 'New name', item_code: null });
    }
    expect(await vectors('patch-me')).toEqual(before);
    // A new image of the item takes the new fields.
    const added = await post('/items/patch-me/images', {}, await images.jpeg(200, 150, 23));
    expect(added.json()).toMatchObject({ item_name: 'New name', item_code: null });
  });

  it('PATCH refuses unknown items, unknown or empty fields, wrong types and non-JSON', async () => {
    const patch = (url: string, payload: string, type = 'application/json') =>
      t.app.inject({ method: 'PATCH', url, headers: { 'content-type': type }, payload });
    expect((await patch('/items/nobody', '{"item_name":"x"}')).json().error).toBe('item_not_found');
    await post('/ingest', { item_id: 'strict' }, await images.jpeg(100, 80, 31));
    for (const body of ['{}', '{"item_id":"other"}', '{"colour":"red"}', '{"item_name":5}', '{"item_name":']) {
      const response = await patch('/items/strict', body);
      expect(response.statusCode, body).toBe(400);
      expect(response.json().error).toBe('invalid_request');
    }
    const text = await patch('/items/strict', 'item_name=x', 'text/plain');
    expect(text.statusCode).toBe(415);
    expect(text.json().error).toBe('json_required');
    expect(double?.violations ?? []).toEqual([]);
  });
});
