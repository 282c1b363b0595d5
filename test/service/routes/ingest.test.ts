import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { MAX_IMAGE_BYTES: '200000' } });
});
afterAll(() => t.close());

const ingest = async (fields: Record<string, string>, bytes?: Buffer) =>
  t.app.inject({ method: 'POST', url: '/ingest', ...(await multipart(fields, bytes && { bytes })) });

/** Every file under the image directory, relative. */
function storedFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(path.relative(root, full));
    }
  };
  walk(root);
  return out;
}

describe('POST /ingest', () => {
  it('201: stores the image and its point, returns the ids', async () => {
    const bytes = await images.jpeg(640, 480, 1);
    const response = await ingest({ item_id: 'SKU-1', item_name: 'Orange juice', item_code: 'OJ-1' }, bytes);
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({
      item_id: 'SKU-1',
      item_name: 'Orange juice',
      item_code: 'OJ-1',
      model: 'test_model',
      bytes: bytes.length,
    });
    expect(body.image_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.duplicates).toEqual([]);
    expect(Object.keys(body).sort()).toEqual(
      [
        'brand',
        'bytes',
        'created_at',
        'disabled',
        'duplicates',
        'image_id',
        'item_code',
        'item_group',
        'item_id',
        'item_name',
        'kind',
        'model',
        'phash',
        'sha256',
        'source',
        'source_ref',
      ].sort(),
    );
    const [record] = await t.store.collection('items').itemImages('SKU-1');
    expect(record).toMatchObject({ image_id: body.image_id, sha256: body.sha256 });
    expect(storedFiles(t.config.imageStorageDir)).toContain(record.file);
  });

  it('409 when the item exists', async () => {
    await ingest({ item_id: 'dup' }, await images.jpeg(100, 100, 2));
    const response = await ingest({ item_id: 'dup' }, await images.jpeg(100, 100, 3));
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ error: 'item_exists' });
    expect(await t.store.collection('items').itemImages('dup')).toHaveLength(1);
  });

  it('two concurrent ingests of one new item: exactly one 201, one 409', async () => {
    const [a, b] = await Promise.all([
      ingest({ item_id: 'race' }, await images.jpeg(200, 200, 4)),
      ingest({ item_id: 'race' }, await images.jpeg(200, 200, 5)),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 409]);
    expect(await t.store.collection('items').itemImages('race')).toHaveLength(1);
  });

  const badRequests: Array<[string, Record<string, string>, boolean, string]> = [
    ['item_id missing', { item_name: 'x' }, true, 'missing_field'],
    ['item_id blank', { item_id: '   ' }, true, 'missing_field'],
    ['item_id too long', { item_id: 'x'.repeat(1025) }, true, 'invalid_field'],
    ['neither file nor image_url', { item_id: 'n' }, false, 'image_required'],
    ['both file and image_url', { item_id: 'b', image_url: 'https://example.com/a.jpg' }, true, 'ambiguous_image'],
    ['file sent as a text field', { item_id: 'f', file: 'not a file' }, false, 'invalid_file'],
  ];
  for (const [name, fields, withFile, code] of badRequests) {
    it(`400 ${code}: ${name}`, async () => {
      const response = await ingest(fields, withFile ? await images.jpeg(64, 64) : undefined);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: code, message: expect.any(String) });
    });
  }

  it('413 when the file exceeds MAX_IMAGE_BYTES, and nothing is stored', async () => {
    const big = await images.photo(1500, 1500, 7).png({ compressionLevel: 0 }).toBuffer();
    expect(big.length).toBeGreaterThan(200_000);
    const response = await ingest({ item_id: 'big' }, big);
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ error: 'image_too_large' });
    expect(await t.store.collection('items').itemImages('big')).toEqual([]);
  });

  it('415 for a file that is not an image (and for SVG)', async () => {
    for (const bytes of [Buffer.from('hello, this is text'), images.svg()]) {
      const response = await ingest({ item_id: 'text' }, bytes);
      expect(response.statusCode).toBe(415);
      expect(response.json()).toMatchObject({ error: 'unsupported_image' });
    }
  });

  it('415 when the request is not multipart', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/ingest', payload: { item_id: 'json' } });
    expect(response.statusCode).toBe(415);
    expect(response.json()).toMatchObject({ error: 'multipart_required' });
  });

  it('422 for a truncated image, leaving no file and no point behind', async () => {
    const before = storedFiles(t.config.imageStorageDir).length;
    const response = await ingest({ item_id: 'broken' }, await images.truncatedJpeg());
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({ error: 'image_unreadable' });
    expect(storedFiles(t.config.imageStorageDir)).toHaveLength(before);
    expect(await t.store.collection('items').itemImages('broken')).toEqual([]);
  });

  it('400 empty_image for a zero-byte upload', async () => {
    const response = await ingest({ item_id: 'empty' }, Buffer.alloc(0));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'empty_image' });
  });

  it('stores hostile item ids inside the image directory, without collisions, and reads them back by URL', async () => {
    const ids = [
      '../../etc/passwd',
      'a/b/c',
      'a%2Fb',
      'ünïcødé 商品 🍊',
      'x'.repeat(500),
      '..',
      '.',
      'CON',
      'with\\backslash',
    ];
    for (const [i, itemId] of ids.entries()) {
      const response = await ingest({ item_id: itemId, item_name: `n${i}` }, await images.jpeg(80, 60, 10 + i));
      expect(response.statusCode, itemId).toBe(201);
      // "." and ".." cannot travel as a path segment: URL parsers remove dot segments, even encoded ones.
      if (itemId === '.' || itemId === '..') continue;
      const read = await t.app.inject({ method: 'GET', url: `/items/${encodeURIComponent(itemId)}` });
      expect(read.statusCode, itemId).toBe(200);
      expect(read.json()).toMatchObject({ item_id: itemId, item_name: `n${i}` });
    }
    const root = path.resolve(t.config.imageStorageDir);
    const files = new Set<string>();
    for (const itemId of ids) {
      const [record] = await t.store.collection('items').itemImages(itemId);
      const absolute = path.resolve(root, record.file);
      expect(absolute.startsWith(root + path.sep)).toBe(true);
      expect(record.file).toMatch(/^[0-9a-f]{2}\/[0-9a-f]{64}\/[0-9a-f-]{36}\.jpg$/);
      files.add(path.dirname(record.file));
    }
    expect(files.size).toBe(ids.length);
  });
});
