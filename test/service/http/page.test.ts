// The staff page's files as the API serves them (built by the test run's global setup from service/web):
// public, strict CSP with no inline script, pre-compressed, content-hashed assets cached for good, the
// favicon, and a JavaScript budget of 100 KB compressed.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_DIST } from '../../../scripts/dev/build-web.js';
import { startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  // With keys configured: the page itself must still load without one (it asks for the key).
  t = await startTestApp({ env: { IMAGE_SEARCH_API_KEY: 'w'.repeat(32), IMAGE_SEARCH_READ_KEY: 'r'.repeat(32) } });
});
afterAll(() => t.close());

const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers });

/** The page's directives, parsed from its Content-Security-Policy header. */
function directives(header: unknown): Record<string, string[]> {
  return Object.fromEntries(
    String(header)
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name, ...values]) => [name, values]),
  );
}

describe('the staff page', () => {
  it('GET / is the page, without a key, with a strict CSP and the other security headers', async () => {
    const response = await get('/');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body).toContain('<title>Image search</title>');
    const csp = directives(response.headers['content-security-policy']);
    expect(csp).toEqual({
      'default-src': ["'none'"],
      'script-src': ["'self'"],
      'style-src': ["'self'"],
      'img-src': ["'self'", 'blob:'],
      'connect-src': ["'self'"],
      'base-uri': ["'none'"],
      'form-action': ["'none'"],
      'frame-ancestors': ["'none'"],
    });
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.headers['cache-control']).toBe('no-cache');
    expect((await get('/index.html')).body).toBe(response.body);
  });

  it('has no inline script, style or event handler, and loads nothing from another origin', () => {
    const html = readFileSync(path.join(WEB_DIST, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0]![1]).toMatch(/src="\/app\/main-[A-Z0-9]+\.js"/);
    expect(scripts[0]![2]).toBe('');
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('serves the hashed assets cached for a year, and brotli or gzip copies to clients that take them', async () => {
    const html = (await get('/')).body;
    const assets = [...html.matchAll(/"(\/app\/[^"]+)"/g)].map((match) => match[1]!);
    expect(assets).toHaveLength(2);
    for (const asset of assets) {
      const plain = await get(asset);
      expect(plain.statusCode, asset).toBe(200);
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(plain.headers['content-type']).toMatch(asset.endsWith('.js') ? /javascript/ : /text\/css/);
      const br = await get(asset, { 'accept-encoding': 'br, gzip' });
      expect(br.headers['content-encoding']).toBe('br');
      expect(brotliDecompressSync(br.rawPayload).equals(plain.rawPayload)).toBe(true);
      expect(br.headers.vary).toMatch(/accept-encoding/i);
    }
    const js = (await get(assets.find((asset) => asset.endsWith('.js'))!)).body;
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it('sends at most 100 KB of JavaScript, compressed', () => {
    const scripts = readdirSync(path.join(WEB_DIST, 'app')).filter((file) => file.endsWith('.js.gz'));
    expect(scripts.length).toBeGreaterThan(0);
    const total = scripts.reduce((sum, file) => sum + readFileSync(path.join(WEB_DIST, 'app', file)).length, 0);
    expect(total).toBeLessThanOrEqual(100 * 1024);
  });

  it('serves /favicon.ico as an icon', async () => {
    const response = await get('/favicon.ico');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^image\/(x-icon|vnd\.microsoft\.icon)/);
    expect(response.rawPayload.readUInt16LE(2)).toBe(1); // ICO header: type icon
    expect(response.rawPayload.subarray(22, 26).toString('latin1')).toBe('\x89PNG');
  });

  it('anything else is the JSON 404 of the API; the API keeps its own headers and its keys', async () => {
    for (const url of ['/nope', '/app/nope.js', '/index.html.br', '/../package.json']) {
      const response = await get(url);
      expect(response.statusCode, url).toBe(404);
      expect(response.json()).toMatchObject({ error: 'not_found' });
    }
    const api = await get('/session');
    expect(api.statusCode).toBe(401);
    expect(api.headers['content-security-policy']).toBeUndefined();
    const session = await get('/session', { 'image-search-api-key': 'r'.repeat(32) });
    expect(session.json()).toEqual({ access: 'read', erpnext_url: null });
  });
});
