import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
let server: Server;
let base: string;
let hits = 0;
const served = new Map<string, Buffer>();

beforeAll(async () => {
  server = createServer((request, response) => {
    hits++;
    const path = request.url ?? '/';
    if (path === '/hang') return; // accepts, never answers
    const body = served.get(path);
    if (!body) return void response.writeHead(404).end('missing');
    response.writeHead(200, { 'content-type': 'image/jpeg' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await startTestApp({ env: { IMAGE_URL_ALLOW: '127.0.0.1/32', IMAGE_URL_TIMEOUT_MS: '500', MAX_TOP_K: '20' } });

  // Six items; item "multi" has three images, one of which is the query picture.
  for (const seed of [1, 2, 3, 4, 5]) {
    const response = await t.app.inject({
      method: 'POST',
      url: '/ingest',
      ...(await multipart(
        { item_id: `item-${seed}`, item_name: `Item ${seed}` },
        { bytes: await images.jpeg(400, 300, seed * 10) },
      )),
    });
    expect(response.statusCode).toBe(201);
  }
  await t.app.inject({
    method: 'POST',
    url: '/ingest',
    ...(await multipart({ item_id: 'multi', item_code: 'M-1' }, { bytes: await images.jpeg(400, 300, 77) })),
  });
  for (const seed of [78, 99]) {
    const response = await t.app.inject({
      method: 'POST',
      url: '/items/multi/images',
      ...(await multipart({}, { bytes: await images.jpeg(400, 300, seed) })),
    });
    expect(response.statusCode).toBe(201);
  }
});
afterAll(async () => {
  await t.close();
  await new Promise((resolve) => server.close(resolve));
});

const search = async (fields: Record<string, string>, bytes?: Buffer) =>
  t.app.inject({ method: 'POST', url: '/search', ...(await multipart(fields, bytes && { bytes })) });

describe('POST /search', () => {
  it('200: one row per item, best first, the item with several images once with its best image', async () => {
    const query = await images.photo(400, 300, 99).resize(380).jpeg({ quality: 80 }).toBuffer();
    const response = await search({ top_k: '10' }, query);
    expect(response.statusCode).toBe(200);
    const { results } = response.json() as {
      results: Array<{
        item_id: string;
        item_name: string | null;
        item_code: string | null;
        score: number;
        image_id: string;
      }>;
    };
    expect(results).toHaveLength(6);
    expect(new Set(results.map((r) => r.item_id)).size).toBe(6);
    expect(results[0]).toMatchObject({ item_id: 'multi', item_code: 'M-1', item_name: null });
    const multi = await t.store.collection('items').itemImages('multi');
    const best = multi.find((image) => image.image_id === results[0].image_id);
    expect(best).toBeDefined();
    expect(multi.indexOf(best!)).toBe(2); // the third image is the query picture: a near-copy wins
    for (let i = 1; i < results.length; i++) expect(results[i - 1].score).toBeGreaterThanOrEqual(results[i].score);
    expect(Object.keys(results[0]).sort()).toEqual(
      ['brand', 'confidence', 'image_id', 'item_code', 'item_group', 'item_id', 'item_name', 'kind', 'score'].sort(),
    );
  });

  it('returns 5 results by default and honours top_k', async () => {
    const query = await images.jpeg(400, 300, 10);
    expect((await search({}, query)).json().results).toHaveLength(5);
    expect((await search({ top_k: '2' }, query)).json().results).toHaveLength(2);
  });

  for (const value of ['0', '-1', 'abc', '2.5', '21']) {
    it(`400 invalid_top_k for top_k=${value}`, async () => {
      const response = await search({ top_k: value }, await images.jpeg(64, 64));
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_top_k', message: expect.stringContaining('1 to 20') });
    });
  }

  it('fetches image_url from an allowed host', async () => {
    served.set('/photo.jpg', await images.jpeg(400, 300, 30));
    const response = await search({ image_url: `${base}/photo.jpg`, top_k: '1' });
    expect(response.statusCode).toBe(200);
    expect(response.json().results[0]).toMatchObject({ item_id: 'item-3' });
  });

  it('502 when the image_url answers with an error status', async () => {
    const response = await search({ image_url: `${base}/nothing-here.jpg` });
    expect(response.statusCode).toBe(502);
    expect(response.json()).toMatchObject({ error: 'url_fetch_failed' });
  });

  it('504 when the image_url does not answer in time', async () => {
    const response = await search({ image_url: `${base}/hang` });
    expect(response.statusCode).toBe(504);
    expect(response.json()).toMatchObject({ error: 'url_timeout' });
  });

  it('400 invalid_url for a non-http URL', async () => {
    const response = await search({ image_url: 'file:///etc/passwd' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_url' });
  });
});

describe('image_url SSRF rules at the API', () => {
  let strict: TestApp;
  beforeAll(async () => {
    strict = await startTestApp(); // no IMAGE_URL_ALLOW: loopback is refused
  });
  afterAll(() => strict.close());

  it('400 url_refused for loopback, and no connection is made', async () => {
    served.set('/secret.jpg', await images.jpeg(64, 64));
    const before = hits;
    const response = await strict.app.inject({
      method: 'POST',
      url: '/search',
      ...(await multipart({ image_url: `${base}/secret.jpg` })),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'url_refused' });
    expect(hits).toBe(before);
  });

  it('400 url_refused for the instance metadata address, without any connection', async () => {
    const response = await strict.app.inject({
      method: 'POST',
      url: '/ingest',
      ...(await multipart({ item_id: 'x', image_url: 'http://169.254.169.254/latest/meta-data/' })),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'url_refused' });
  });
});
