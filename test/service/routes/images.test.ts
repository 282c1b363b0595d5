// GET /images/{id} and /images/{id}/thumbnail (originals and cached thumbnails), GET /items?q= (lookup by
// id or code) and GET /session, against the real app: real sharp, real files, the embedded store.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageFiles } from '../../../service/src/catalog/image-files.js';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { ERPNEXT_URL: 'https://erp.example.com' } });
});
afterAll(() => t.close());

async function ingest(itemId: string, bytes: Buffer, fields: Record<string, string> = {}) {
  const response = await t.app.inject({
    method: 'POST',
    url: '/ingest',
    ...(await multipart({ item_id: itemId, item_name: `Name ${itemId}`, ...fields }, { bytes })),
  });
  expect(response.statusCode).toBe(201);
  return response.json() as { image_id: string; sha256: string };
}

async function addImage(itemId: string, bytes: Buffer) {
  const response = await t.app.inject({
    method: 'POST',
    url: `/items/${itemId}/images`,
    ...(await multipart({}, { bytes })),
  });
  expect(response.statusCode).toBe(201);
  return response.json() as { image_id: string; sha256: string };
}

const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers });
const thumbsDir = () => path.join(t.config.imageStorageDir, '.thumbs');
/** Every cached thumbnail file, relative to the cache directory. */
function cachedThumbnails(): string[] {
  if (!existsSync(thumbsDir())) return [];
  return readdirSync(thumbsDir(), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(thumbsDir(), path.join(entry.parentPath, entry.name)));
}

describe('GET /images/{image_id}', () => {
  it('answers the original bytes with their content type, an ETag, caching and a CSP that runs nothing', async () => {
    const png = await images.png(300, 200, 11);
    const { image_id, sha256 } = await ingest('orig-png', png);
    const response = await get(`/images/${image_id}`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('image/png');
    expect(response.rawPayload.equals(png)).toBe(true);
    expect(response.headers.etag).toBe(`"${sha256}"`);
    expect(response.headers['cache-control']).toBe('private, max-age=3600');
    expect(response.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
    expect(response.headers['x-content-type-options']).toBe('nosniff');

    const again = await get(`/images/${image_id}`, { 'if-none-match': `W/"other", "${sha256}"` });
    expect(again.statusCode).toBe(304);
    expect(again.rawPayload.length).toBe(0);
    expect((await get(`/images/${image_id}`, { 'if-none-match': '"other"' })).statusCode).toBe(200);
  });

  it('keeps JPEG as image/jpeg', async () => {
    const { image_id } = await ingest('orig-jpeg', await images.jpeg(200, 150, 12));
    expect((await get(`/images/${image_id}`)).headers['content-type']).toBe('image/jpeg');
  });

  it('404 JSON for an unknown image, on both routes', async () => {
    for (const url of ['/images/no-such-image', '/images/no-such-image/thumbnail?size=128']) {
      const response = await get(url);
      expect(response.statusCode, url).toBe(404);
      expect(response.json()).toMatchObject({ error: 'image_not_found', message: expect.any(String) });
    }
  });
});

describe('GET /images/{image_id}/thumbnail', () => {
  it('makes an upright WebP no larger than the size asked for, caches it on disk and reuses it', async () => {
    // Stored rotated, with EXIF orientation 6: upright, it is 400 wide and 300 high.
    const { image_id, sha256 } = await ingest('thumb-exif', await images.exifRotatedJpeg(400, 300, 13));
    const before = cachedThumbnails().length;
    const response = await get(`/images/${image_id}/thumbnail?size=128`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('image/webp');
    expect(response.headers.etag).toMatch(new RegExp(`^"${sha256.slice(0, 32)}-128-t\\d+"$`));
    const meta = await sharp(response.rawPayload).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 128, height: 96 });
    expect(cachedThumbnails().length).toBe(before + 1);

    // The cached file is what the next request answers: overwrite it and see the new bytes come back.
    const file = cachedThumbnails().find((name) => name.includes('-128-'))!;
    const marker = await sharp({ create: { width: 7, height: 5, channels: 3, background: '#000' } })
      .webp()
      .toBuffer();
    writeFileSync(path.join(thumbsDir(), file), marker);
    expect((await get(`/images/${image_id}/thumbnail?size=128`)).rawPayload.equals(marker)).toBe(true);
    // A missing cache file is made again.
    rmSync(path.join(thumbsDir(), file));
    const rebuilt = await get(`/images/${image_id}/thumbnail?size=128`);
    expect(await sharp(rebuilt.rawPayload).metadata()).toMatchObject({ width: 128, height: 96 });
    expect(existsSync(path.join(thumbsDir(), file))).toBe(true);
  });

  it('defaults to 256, never enlarges, and answers 304 to its own ETag', async () => {
    const { image_id } = await ingest('thumb-small', await images.png(200, 100, 14));
    const response = await get(`/images/${image_id}/thumbnail`);
    expect(await sharp(response.rawPayload).metadata()).toMatchObject({ width: 200, height: 100 });
    const cached = await get(`/images/${image_id}/thumbnail`, { 'if-none-match': response.headers.etag as string });
    expect(cached.statusCode).toBe(304);
    const other = await get(`/images/${image_id}/thumbnail?size=512`, {
      'if-none-match': response.headers.etag as string,
    });
    expect(other.statusCode).toBe(200); // another size, another ETag
  });

  it('400 with the allowed sizes for any other size', async () => {
    const { image_id } = await ingest('thumb-size', await images.jpeg(100, 100, 15));
    for (const size of ['100', 'big', '']) {
      const response = await get(`/images/${image_id}/thumbnail?size=${size}`);
      expect(response.statusCode, size).toBe(400);
      expect(response.json()).toEqual({
        error: 'invalid_request',
        message: 'size must be one of 128, 256, 512 (pixels of the long side).',
      });
    }
  });

  it('deleting an image, an item or everything removes their thumbnails; ops check never sees them', async () => {
    const a = await ingest('thumb-del', await images.jpeg(300, 200, 16));
    const b = await addImage('thumb-del', await images.jpeg(300, 200, 17));
    const c = await ingest('thumb-del-2', await images.jpeg(300, 200, 18));
    for (const { image_id } of [a, b, c]) {
      for (const size of [128, 512])
        expect((await get(`/images/${image_id}/thumbnail?size=${size}`)).statusCode).toBe(200);
    }
    const thumbsOf = async (imageId: string) => {
      const record = await t.catalog.image(imageId).catch(() => undefined);
      return cachedThumbnails().filter((file) => record && file.startsWith(record.file.replace(/\.[^.]+$/, '-')));
    };
    expect(await thumbsOf(a.image_id)).toHaveLength(2);
    const recordA = await t.catalog.image(a.image_id);
    const stemA = recordA.file.replace(/\.[^.]+$/, '-');

    // ops check lists stored originals only: thumbnails are not "files without a point".
    const listed: string[] = [];
    for await (const file of new ImageFiles(t.config.imageStorageDir).list()) listed.push(file);
    expect(listed.some((file) => file.includes('.thumbs'))).toBe(false);
    expect(listed).toContain(recordA.file);

    const deleted = await t.app.inject({ method: 'DELETE', url: `/items/thumb-del/images/${a.image_id}` });
    expect(deleted.statusCode).toBe(200);
    expect(cachedThumbnails().filter((file) => file.startsWith(stemA))).toEqual([]);
    expect(await thumbsOf(b.image_id)).toHaveLength(2); // the other image of the item keeps its own
    expect((await get(`/images/${a.image_id}/thumbnail?size=128`)).statusCode).toBe(404);

    expect((await t.app.inject({ method: 'DELETE', url: '/items/thumb-del' })).statusCode).toBe(200);
    expect(await thumbsOf(c.image_id)).toHaveLength(2);
    const itemThumbDir = path.dirname(path.join(thumbsDir(), stemA));
    expect(existsSync(itemThumbDir)).toBe(false); // the item's directory in the cache went with it

    await t.catalog.deleteAll();
    expect(cachedThumbnails()).toEqual([]);
  });
});

describe('GET /items?q= (lookup by id or code)', () => {
  it('finds an item by its id, and every item with that code, each once with its oldest image', async () => {
    const first = await ingest('SKU-A', await images.jpeg(120, 90, 21), { item_code: 'CODE-1', item_group: 'Juice' });
    await addImage('SKU-A', await images.jpeg(120, 90, 22));
    const other = await ingest('SKU-B', await images.jpeg(120, 90, 23), { item_code: 'SKU-A' });

    const response = await get('/items?q=SKU-A');
    expect(response.statusCode).toBe(200);
    const { items } = response.json() as { items: Array<Record<string, unknown>> };
    expect(items.map((item) => [item.item_id, item.image_id])).toEqual([
      ['SKU-A', first.image_id], // by id first
      ['SKU-B', other.image_id], // then by code
    ]);
    expect(items[0]).toMatchObject({ item_name: 'Name SKU-A', item_code: 'CODE-1', item_group: 'Juice' });
    expect(items[0]).not.toHaveProperty('file');

    expect((await get('/items?q=CODE-1')).json().items.map((i: { item_id: string }) => i.item_id)).toEqual(['SKU-A']);
    expect((await get('/items?q=code-1')).json()).toEqual({ items: [] }); // exact
    expect((await get('/items?q=SKU')).json()).toEqual({ items: [] }); // not a prefix
  });

  it('400 without q', async () => {
    const response = await get('/items');
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_request' });
  });
});

describe('GET /session', () => {
  it('says write when no key is configured, with the ERPNext address', async () => {
    expect((await get('/session')).json()).toEqual({ access: 'write', erpnext_url: 'https://erp.example.com' });
  });

  it('tells a read key from a write key, refuses a wrong one, and the read key cannot write', async () => {
    const keyed = await startTestApp({
      env: { IMAGE_SEARCH_API_KEY: 'w'.repeat(32), IMAGE_SEARCH_READ_KEY: 'r'.repeat(32) },
    });
    try {
      const session = (key?: string) =>
        keyed.app.inject({ method: 'GET', url: '/session', headers: key ? { 'image-search-api-key': key } : {} });
      expect((await session('w'.repeat(32))).json()).toEqual({ access: 'write', erpnext_url: null });
      expect((await session('r'.repeat(32))).json()).toEqual({ access: 'read', erpnext_url: null });
      expect((await session()).statusCode).toBe(401);
      expect((await session('x'.repeat(32))).statusCode).toBe(401);
      // Thumbnails and originals need a key too (the page sends it in the header).
      expect((await keyed.app.inject({ method: 'GET', url: '/images/x/thumbnail' })).statusCode).toBe(401);
      const read = await keyed.app.inject({
        method: 'GET',
        url: '/images/x/thumbnail',
        headers: { 'image-search-api-key': 'r'.repeat(32) },
      });
      expect(read.statusCode).toBe(404);
      const write = await keyed.app.inject({
        method: 'DELETE',
        url: '/items/x/images/y',
        headers: { 'image-search-api-key': 'r'.repeat(32) },
      });
      expect(write.statusCode).toBe(403);
    } finally {
      await keyed.close();
    }
  });
});
