import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('error responses', () => {
  it('404 JSON for an unknown route', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/nope?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      error: 'not_found',
      message: 'No route GET /nope. See GET /docs for the endpoints.',
    });
  });

  it('never answers malformed multipart with a 500 or a stack trace', async () => {
    const bodies = [
      {
        'content-type': 'multipart/form-data; boundary=xyz',
        payload: '--xyz\r\nContent-Disposition: form-data; name="item_id"\r\n\r\nabc',
      },
      { 'content-type': 'multipart/form-data', payload: 'garbage' },
      { 'content-type': 'application/octet-stream', payload: Buffer.from([1, 2, 3]) },
      { 'content-type': 'text/plain', payload: 'hello' },
    ];
    for (const { payload, ...headers } of bodies) {
      const response = await t.app.inject({ method: 'POST', url: '/search', payload, headers });
      expect(response.statusCode, JSON.stringify(headers)).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, JSON.stringify(headers)).toBeLessThan(500);
      const body = response.json();
      expect(Object.keys(body).sort()).toEqual(['error', 'message']);
      expect(response.body).not.toMatch(/at .*\.(ts|js):\d+/);
    }
  });

  it('400 for two file parts', async () => {
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('a')]), 'a.jpg');
    form.append('file', new Blob([Buffer.from('b')]), 'b.jpg');
    const request = new Request('http://x/', { method: 'POST', body: form });
    const response = await t.app.inject({
      method: 'POST',
      url: '/search',
      payload: Buffer.from(await request.arrayBuffer()),
      headers: { 'content-type': request.headers.get('content-type')! },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'too_many_files' });
  });
});
