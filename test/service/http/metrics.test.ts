// GET /metrics: the exposition parses as Prometheus text format and carries the request, embedding, URL
// fetch, collection, model and process metrics; it needs the read key like any read.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
// @ts-expect-error -- the package ships no types; it exports one function (text → metric families).
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';
import * as images from '../../support/images.js';

interface Family {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; count?: string; buckets?: object }>;
}
const parse = parsePrometheusTextFormat as (text: string) => Family[];

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('GET /metrics', () => {
  it('parses as Prometheus text format and has the metrics of requests, embedding, model and process', async () => {
    const env = { IMAGE_SEARCH_READ_KEY: 'reader-key-1234567890', IMAGE_SEARCH_API_KEY: 'writer-key-1234567890' };
    t = await startTestApp({ env });
    const headers = { 'image-search-api-key': 'reader-key-1234567890' };
    // Three images of two items.
    for (const [url, itemId, seed] of [
      ['/ingest', 'a', 11],
      ['/items/a/images', 'a', 12],
      ['/ingest', 'b', 13],
    ] as const) {
      const form = await multipart({ item_id: itemId }, { bytes: await images.jpeg(160, 120, seed) });
      const ingest = await t.app.inject({
        method: 'POST',
        url,
        ...form,
        headers: { ...form.headers, 'image-search-api-key': 'writer-key-1234567890' },
      });
      expect(ingest.statusCode, ingest.body).toBe(201);
    }
    const photo = await images.jpeg(320, 240, 3);
    for (let i = 0; i < 2; i++) {
      const form = await multipart({}, { bytes: photo });
      const search = await t.app.inject({
        method: 'POST',
        url: '/search',
        ...form,
        headers: { ...form.headers, ...headers },
      });
      expect(search.statusCode, search.body).toBe(200);
    }
    const bad = await multipart({ image_url: 'ftp://example.test/a.jpg' });
    await t.app.inject({ method: 'POST', url: '/search', ...bad, headers: { ...bad.headers, ...headers } });
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);

    const response = await t.app.inject({ method: 'GET', url: '/metrics', headers });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = new Map(parse(response.body).map((family) => [family.name, family]));
    const family = (name: string) => {
      const found = families.get(name);
      expect(found, `${name} in /metrics`).toBeDefined();
      return found!;
    };

    const requests = family('http_requests_total');
    expect(requests.type).toBe('COUNTER');
    expect(requests.metrics).toContainEqual({
      labels: { method: 'POST', route: '/search', status: '200' },
      value: '2',
    });
    // The parser keeps only the buckets of a histogram: its _count lines are read from the text.
    const histogramCount = (name: string, labels = '') => {
      expect(family(name).type).toBe('HISTOGRAM');
      return Number(
        new RegExp(`^${name}_count${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(response.body)?.[1],
      );
    };
    expect(histogramCount('http_request_duration_seconds', '{method="POST",route="/search",status="200"}')).toBe(2);
    expect(histogramCount('image_decode_seconds')).toBeGreaterThanOrEqual(2); // a search may also embed a centre view
    expect(histogramCount('inference_seconds')).toBeGreaterThanOrEqual(2);
    expect(histogramCount('embedding_queue_wait_seconds')).toBeGreaterThanOrEqual(2);
    expect(family('embedding_queue_depth').metrics[0].value).toBe('0');
    expect(family('image_url_fetches_total').metrics).toContainEqual({
      labels: { outcome: 'invalid_url' },
      value: '1',
    });
    expect(family('collection_images').metrics).toEqual([
      { labels: { collection: 'items_test_model_64' }, value: '3' },
    ]);
    expect(family('collection_items').metrics).toEqual([{ labels: { collection: 'items_test_model_64' }, value: '2' }]);
    // Every store call is timed by its port method: the ingests wrote, the searches searched centroids.
    expect(histogramCount('store_operation_seconds', '{operation="upsert",outcome="ok"}')).toBe(3);
    expect(histogramCount('store_operation_seconds', '{operation="searchCentroids",outcome="ok"}')).toBeGreaterThan(0);
    const sha256 = createHash('sha256').update(readFileSync(t.config.modelPath)).digest('hex');
    expect(family('model_info').metrics).toEqual([
      { labels: { collection: 'items_test_model_64', model: 'test_model', sha256, dim: '64' }, value: '1' },
    ]);
    expect(family('store_up').metrics[0].value).toBe('1');
    expect(Number(family('process_resident_memory_bytes').metrics[0].value)).toBeGreaterThan(0);
    expect(family('nodejs_eventloop_lag_seconds').type).toBe('GAUGE');
  });

  it('keeps one registry per app: two apps in one process count their own requests', async () => {
    t = await startTestApp();
    const other = await startTestApp();
    try {
      await t.app.inject({ method: 'GET', url: '/health' });
      const count = async (app: TestApp) =>
        parse((await app.app.inject({ method: 'GET', url: '/metrics' })).body)
          .find((f) => f.name === 'http_requests_total')
          ?.metrics.find((m) => m.labels?.route === '/health')?.value;
      expect(await count(t)).toBe('1');
      expect(await count(other)).toBeUndefined();
    } finally {
      await other.close();
    }
  });
});
