// Access levels: each route declares none/read/write; the full key may do everything, the read key only
// read routes (403 on write routes), a missing or wrong key gets 401, and with no key configured the API is
// open (and binds to 127.0.0.1 unless HOST is set). A route that declares no access cannot be registered.
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../service/src/config.js';
import { accessControl } from '../../../service/src/http/access.js';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

const FULL = 'full-access key 0123456789';
const READ = 'read-only key 9876543210';

let t: TestApp;
let photo: Buffer;
beforeAll(async () => {
  t = await startTestApp({ env: { IMAGE_SEARCH_API_KEY: FULL, IMAGE_SEARCH_READ_KEY: READ } });
  photo = await images.jpeg(96, 72, 2);
  const form = await multipart({ item_id: 'known' }, { bytes: photo });
  const created = await t.app.inject({
    method: 'POST',
    url: '/ingest',
    headers: { 'image-search-api-key': FULL, ...form.headers },
    payload: form.payload,
  });
  expect(created.statusCode, created.body).toBe(201);
});
afterAll(() => t.close());

async function call(method: string, url: string, key?: string, form?: Record<string, string>) {
  const body = form ? await multipart(form, { bytes: photo }) : undefined;
  return t.app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...(key ? { 'image-search-api-key': key } : {}),
      ...(body?.headers ?? {}),
      ...(method === 'PATCH' ? { 'content-type': 'application/json' } : {}),
    },
    payload: method === 'PATCH' ? JSON.stringify({ item_name: 'x' }) : body?.payload,
  });
}

const READ_ROUTES: Array<[string, string, Record<string, string>?]> = [
  ['GET', '/ready'],
  ['POST', '/search', {}],
  ['POST', '/embed', {}],
  ['GET', '/items/known'],
];
const WRITE_ROUTES: Array<[string, string, Record<string, string>?]> = [
  ['POST', '/ingest', { item_id: 'new-item' }],
  ['POST', '/items/known/images', {}],
  ['PATCH', '/items/known'],
  ['DELETE', '/items/unknown'],
  ['DELETE', '/items'],
];

describe('access levels', () => {
  it.each(READ_ROUTES)('%s %s: read key and full key allowed, none or a wrong one 401', async (method, url, form) => {
    for (const key of [READ, FULL]) expect((await call(method, url, key, form)).statusCode).toBeLessThan(300);
    for (const key of [undefined, 'wrong', `${READ}!`]) {
      const response = await call(method, url, key, form);
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toBe('unauthorized');
    }
  });

  it.each(WRITE_ROUTES)('%s %s: read key 403 forbidden, nothing changes; no key 401', async (method, url, form) => {
    const before = await t.store.collection('items').count();
    const forbidden = await call(method, url, READ, form);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toEqual({ error: 'forbidden', message: expect.stringMatching(/only read/) });
    expect((await call(method, url, undefined, form)).statusCode).toBe(401);
    expect(await t.store.collection('items').count()).toBe(before);
  });

  it('the full key may write', async () => {
    const response = await call('POST', '/items/known/images', FULL, {});
    expect([200, 201]).toContain(response.statusCode);
  });

  it('/health, /openapi.json and /docs need no key', async () => {
    for (const url of ['/health', '/openapi.json', '/docs/']) {
      expect((await t.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
  });

  it('a route without a declared access stops the app from starting', async () => {
    const app = Fastify();
    await app.register(accessControl, { apiKey: 'k' });
    app.get('/undeclared', async () => 'x');
    await expect(app.ready()).rejects.toThrow(/Routes without a declared access \(config.access\): GET \/undeclared/);
  });
});

describe('without any key', () => {
  it('every route is open, and the server binds to 127.0.0.1 unless HOST is set', async () => {
    const open = await startTestApp();
    try {
      expect(open.config.host).toBe('127.0.0.1');
      const response = await open.app.inject({
        method: 'POST',
        url: '/ingest',
        ...(await multipart({ item_id: 'a' }, { bytes: photo })),
      });
      expect(response.statusCode).toBe(201);
    } finally {
      await open.close();
    }
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ IMAGE_SEARCH_API_KEY: 'k' }).host).toBe('0.0.0.0');
  });
});
