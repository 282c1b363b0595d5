// Prometheus metrics at GET /metrics. Access `read`: the same key that may search may watch (a scraper
// sends it as Image-Search-Api-Key), so no second port or listener is needed and nothing is open without a key when
// keys are set. Every app has its own registry (never prom-client's global one): tests build several apps
// in one process, and a second registration of a metric name in one registry would throw.
import { Type } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Catalog } from '../catalog/catalog.js';
import type { ModelRegistry } from '../embedding/registry.js';
import type { EmbeddingObserver } from '../embedding/work-queue.js';
import { route } from './routes.js';

/** Seconds: from a fast cached answer to a slow search on a busy CPU. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: decoding and inference of one image take milliseconds to a few hundred. */
const WORK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

type Stats = Awaited<ReturnType<Catalog['stats']>>;

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route (the pattern, not the path) and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  private readonly durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving a request to sending its answer, by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });
  private readonly urlFetches = new Counter({
    name: 'image_url_fetches_total',
    help: 'image_url fetches, by outcome: ok, or the error code the request answered.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  /** Embedding timings, fed by the model registry's work queue. */
  readonly embedding: EmbeddingObserver;

  constructor(options: { catalog: Catalog; models?: ModelRegistry }) {
    const { catalog, models } = options;
    collectDefaultMetrics({ register: this.registry });
    const histogram = (name: string, help: string) =>
      new Histogram({ name, help, buckets: WORK_BUCKETS, registers: [this.registry] });
    const wait = histogram('embedding_queue_wait_seconds', 'Time an image waited for a free embedding slot.');
    const decode = histogram('image_decode_seconds', 'Decoding and resizing one image into the model input.');
    const inference = histogram('inference_seconds', 'One inference call of the model (a batch in bulk work).');
    this.embedding = {
      waited: (seconds) => wait.observe(seconds),
      decoded: (seconds) => decode.observe(seconds),
      inferred: (seconds) => inference.observe(seconds),
    };
    models?.observe(this.embedding);
    const store = new Histogram({
      name: 'store_operation_seconds',
      help: 'One call of the catalog to the vector store, by operation (the store port method) and outcome.',
      labelNames: ['operation', 'outcome'] as const,
      buckets: WORK_BUCKETS,
      registers: [this.registry],
    });
    catalog.observeStore((operation, seconds, ok) =>
      store.observe({ operation, outcome: ok ? 'ok' : 'error' }, seconds),
    );
    new Gauge({
      name: 'embedding_queue_depth',
      help: 'Images waiting for a free embedding slot right now.',
      registers: [this.registry],
      collect() {
        this.set(models?.queued ?? 0);
      },
    });
    // Read at scrape time, once for the four gauges (prom-client collects them concurrently); when the store
    // does not answer, the collection gauges are left out of that scrape and store_up says 0.
    let pending: { at: number; stats: Promise<Stats | undefined> } | undefined;
    const stats = () => {
      if (!pending || performance.now() - pending.at > 1000) {
        pending = { at: performance.now(), stats: catalog.stats().catch(() => undefined) };
      }
      return pending.stats;
    };
    /** A count of the live collection, labelled by its name; left out of a scrape the store does not answer. */
    const collectionGauge = (name: string, help: string, count: (live: Stats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['collection'] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          const live = await stats();
          if (live) this.set({ collection: live.collection }, count(live));
        },
      });
    collectionGauge('collection_images', 'Images (points) in the live collection.', (live) => live.images);
    collectionGauge(
      'collection_items',
      'Items (with at least one image) in the live collection.',
      (live) => live.items,
    );
    new Gauge({
      name: 'model_info',
      help: 'The live collection and the model that embeds for it (value 1); sha256 identifies its weights.',
      labelNames: ['collection', 'model', 'sha256', 'dim'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const live = await stats();
        if (live) {
          this.set(
            { collection: live.collection, model: live.model, sha256: live.model_sha256, dim: String(live.dim) },
            1,
          );
        }
      },
    });
    new Gauge({
      name: 'store_up',
      help: '1 when the store answered the last scrape, else 0.',
      registers: [this.registry],
      async collect() {
        this.set((await stats()) ? 1 : 0);
      },
    });
  }

  observeRequest(method: string, routePattern: string, status: number, seconds: number): void {
    const labels = { method, route: routePattern, status: String(status) };
    this.requests.inc(labels);
    this.durations.observe(labels, seconds);
  }

  urlFetched(outcome: string): void {
    this.urlFetches.inc({ outcome });
  }
}

/** Times every request of the app (not encapsulated: the hook must see the routes registered later). */
export const metricsPlugin = fp<{ metrics: Metrics }>(
  async (app, { metrics }) => {
    app.addHook('onResponse', async (request, reply) => {
      // Unmatched paths share one label, so scanners cannot grow the label set.
      const pattern = request.routeOptions.url ?? 'unmatched';
      metrics.observeRequest(request.method, pattern, reply.statusCode, reply.elapsedTime / 1000);
    });
    app.get(
      '/metrics',
      route({
        operationId: 'metrics',
        summary: 'Prometheus metrics (text exposition format 0.0.4).',
        tags: ['service'],
        access: 'read',
        response: { 200: Type.String({ description: 'Prometheus text format.' }) },
      }),
      async (_request, reply) => {
        reply.type(metrics.registry.contentType);
        return metrics.registry.metrics();
      },
    );
  },
  { name: 'metrics' },
);
