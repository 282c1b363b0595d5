// buildApp(deps) → a Fastify instance with every plugin and route, not listening: the process entry
// (server.ts) listens, tests use inject().
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Catalog } from './catalog/catalog.js';
import type { Config } from './config.js';
import { apiKeyAuth } from './http/auth.js';
import { errorHandling } from './http/errors.js';
import { ImageIntake, MULTIPART_LIMITS } from './http/intake.js';
import type { UrlFetchPolicy } from './images/fetch-url.js';
import { embedRoutes } from './routes/embed/index.js';
import { healthRoutes } from './routes/health/index.js';
import { ingestRoutes } from './routes/ingest/index.js';
import { itemRoutes } from './routes/items/index.js';
import { searchRoutes } from './routes/search/index.js';

export interface AppDeps {
  config: Config;
  catalog: Catalog;
  storeKind: string;
  logger?: FastifyServerOptions['logger'];
  /** Overrides for URL fetching (tests inject a DNS stub here). */
  urlPolicy?: Partial<UrlFetchPolicy>;
}

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

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, catalog } = deps;
  const app = Fastify({
    logger: deps.logger ?? false,
    // Item ids of up to 1024 characters travel URL-encoded in paths (a unicode character takes up to 12).
    routerOptions: { maxParamLength: 12 * 1024 },
    bodyLimit: 1024 * 1024,
  });
  await app.register(errorHandling, { maxImageBytes: config.maxImageBytes });
  await app.register(apiKeyAuth, { apiKey: config.apiKey });
  await app.register(multipart, { limits: { ...MULTIPART_LIMITS, fileSize: config.maxImageBytes } });

  const intake = new ImageIntake({ ...urlPolicyFrom(config), ...deps.urlPolicy });
  await app.register(healthRoutes, { catalog, storeKind: deps.storeKind });
  await app.register(ingestRoutes, { catalog, intake });
  await app.register(searchRoutes, { catalog, intake, maxTopK: config.maxTopK });
  await app.register(itemRoutes, { catalog, intake });
  await app.register(embedRoutes, { catalog, intake });
  return app;
}
