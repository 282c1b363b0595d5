// buildApp(deps) → a Fastify instance with every plugin and route, not listening: the process entry
// (server.ts) listens, tests use inject(). Plugins are registered explicitly, in this order: errors first
// (so every later failure has the JSON shape), then security headers, CORS, access control, multipart
// parsing, the OpenAPI document, and the routes (the staff page last). With ERPNEXT_URL set it also builds the
// ERPNext connector: the webhook route (with ERPNEXT_WEBHOOK_SECRET) and the scheduled sync, started once the
// server listens and stopped first when it closes.
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Catalog } from './catalog/catalog.js';
import type { Config } from './config.js';
import { openErpNext, type ErpNextOverrides } from './erpnext/connector.js';
import { accessControl, API_KEY_HEADER } from './http/access.js';
import { clientErrorHandler, errorHandling, frameworkErrors } from './http/errors.js';
import { ByteBudget, ImageIntake, MULTIPART_LIMITS } from './http/intake.js';
import { openApi } from './http/openapi.js';
import type { UrlFetchPolicy } from './images/fetch-url.js';
import type { ModelRegistry } from './embedding/registry.js';
import { Metrics, metricsPlugin } from './http/metrics.js';
import { componentLog, type Logger } from './log.js';
import { embedRoutes } from './routes/embed.js';
import { healthRoutes } from './routes/health.js';
import { imageRoutes } from './routes/images.js';
import { itemRoutes } from './routes/items.js';
import { findWebDir, pageRoutes } from './routes/page.js';
import { searchRoutes } from './routes/search.js';
import { webhookRoutes } from './routes/webhooks.js';
import { VERSION } from './version.js';

export interface AppDeps {
  config: Config;
  catalog: Catalog;
  storeKind: string;
  logger?: Logger;
  /** Its embedding timings and queue depth go to /metrics (without it they are left out). */
  models?: ModelRegistry;
  /** Overrides for URL fetching (tests inject a DNS stub here). */
  urlPolicy?: Partial<UrlFetchPolicy>;
  /** Overrides for the ERPNext connector (tests: fast retries, the scheduler's first run). */
  erpnext?: ErpNextOverrides;
}

/** JSON bodies (PATCH) are small; anything larger is refused before it is read. */
export const JSON_BODY_BYTES = 64 * 1024;

export function urlPolicyFrom(config: Config): UrlFetchPolicy {
  return {
    allow: config.urlAllow,
    headers: config.urlHeaders,
    maxBytes: config.maxImageBytes,
    timeoutMs: config.urlTimeoutMs,
    connectTimeoutMs: config.urlConnectTimeoutMs,
    maxRedirects: config.urlMaxRedirects,
  };
}

const silent = { info: () => {}, warn: () => {} };

/** The HTTP component's logger, typed as Fastify's base logger (pino's own type is wider). */
const httpLogger = (logger: Logger): FastifyBaseLogger => logger.child({ component: 'http' });

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, catalog } = deps;
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: httpLogger(deps.logger) } : { logger: false }),
    // Item ids of up to 1024 characters travel URL-encoded in paths (a unicode character takes up to 12).
    routerOptions: { maxParamLength: 12 * 1024 },
    bodyLimit: JSON_BODY_BYTES,
    // Strict JSON: an unknown field or a wrong type is a 400, never silently dropped or converted, and a
    // schema's default never fills in a field the caller left out (a PATCH changes only what it names).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    // Slow clients (slow headers, slow bodies) are cut off instead of holding sockets for ever.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs + 5000,
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // How often Node looks for requests past their time (its default, 30 s, would let them overstay).
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
    },
    frameworkErrors,
    clientErrorHandler,
  });

  // JSON is the only body besides multipart forms (a route that needs another adds its parser in its scope).
  app.removeContentTypeParser('text/plain');
  await app.register(errorHandling, { maxImageBytes: config.maxImageBytes, jsonBodyBytes: JSON_BODY_BYTES });
  // The API answers JSON; pages (docs, the staff page) set their own Content-Security-Policy.
  await app.register(helmet, { contentSecurityPolicy: false, crossOriginResourcePolicy: { policy: 'same-site' } });
  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins,
      methods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: [API_KEY_HEADER, 'content-type'],
      maxAge: 600,
    });
  }
  await app.register(accessControl, { apiKey: config.apiKey, readKey: config.readKey });
  await app.register(multipart, { limits: { ...MULTIPART_LIMITS, fileSize: config.maxImageBytes } });
  await openApi(app, { version: VERSION });
  const metrics = new Metrics({ catalog, models: deps.models });
  await app.register(metricsPlugin, { metrics });

  const intake = new ImageIntake({
    urlPolicy: { ...urlPolicyFrom(config), ...deps.urlPolicy },
    maxImageBytes: config.maxImageBytes,
    budget: new ByteBudget(config.uploadBudgetBytes),
    onUrlFetch: (outcome) => metrics.urlFetched(outcome),
    embeddingFull: () => deps.models?.full ?? false,
  });
  await app.register(healthRoutes, { catalog, storeKind: deps.storeKind });
  await app.register(itemRoutes, { catalog, intake });
  await app.register(searchRoutes, { catalog, intake, maxTopK: config.maxTopK, minConfidence: config.minConfidence });
  await app.register(embedRoutes, { catalog, intake });
  await app.register(imageRoutes, { catalog });
  const erpnext = openErpNext(config, catalog, componentLog(deps.logger ?? silent, 'erpnext'), deps.erpnext);
  if (erpnext) {
    if (erpnext.webhooks) await app.register(webhookRoutes, erpnext.webhooks);
    app.addHook('onListen', async () => erpnext.scheduler?.start());
    // preClose: before the store and the models close (their onClose hooks), background work stops.
    app.addHook('preClose', async () => erpnext.close());
  }
  await app.register(pageRoutes, { webDir: findWebDir(), erpnextUrl: config.erpnextUrl });
  if (!config.apiKey && !config.readKey) {
    app.log.warn(
      `No IMAGE_SEARCH_API_KEY or IMAGE_SEARCH_READ_KEY is set: anyone who can reach ${config.host}:${config.port} ` +
        'can read and change the catalog. Set the keys in production.',
    );
  }
  return app;
}
