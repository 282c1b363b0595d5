// A burst larger than the embedding queue is refused at once with 503 busy (and Retry-After) instead
// of piling up in memory; the requests that got a slot are answered normally.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { EMBED_CONCURRENCY: '1', EMBED_QUEUE_MAX: '0' } });
});
afterAll(() => t.close());

describe('embedding queue', () => {
  it('answers a burst with some 200s and some 503 busy', async () => {
    const bytes = await images.jpeg(2400, 1800, 3);
    const body = await multipart({}, { bytes });
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => t.app.inject({ method: 'POST', url: '/search', ...body })),
    );
    const codes = responses.map((r) => r.statusCode);
    expect(codes).toContain(200);
    expect(codes).toContain(503);
    expect(codes.every((code) => code === 200 || code === 503)).toBe(true);
    const busy = responses.find((r) => r.statusCode === 503)!;
    expect(busy.json()).toMatchObject({ error: 'busy' });
    expect(busy.headers['retry-after']).toBe('1');
  });
});
