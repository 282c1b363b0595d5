// The staff page: a small web app for clerks on phones and tablets, served by the API itself so it needs
// nothing else (no CDN, no second server). `npm run build:web` builds service/web into service/web/dist:
// index.html and favicon.ico at the root, content-hashed scripts and styles under /app/ (cached for a
// year; the HTML is revalidated on every load, so a new release is picked up at once), each also
// pre-compressed (brotli, gzip). The page's files are public (they hold no data) and carry a strict
// Content-Security-Policy: nothing inline, nothing from elsewhere; images may also be blob: URLs, since
// the page fetches thumbnails with the key in a header and shows them from memory. GET /session tells
// the page what its key may do.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyHelmetOptions } from '@fastify/helmet';
import staticFiles from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { ServiceError } from '../errors.js';
import { route } from '../http/routes.js';
import { Session } from '../schemas/api.js';

/**
 * Where the built page is: ../../web/dist from this file, which is service/web/dist under tsx and
 * dist/service/web/dist when compiled (the Docker image copies it there); or, compiled in a checkout
 * (`npm run build`), the checkout's service/web/dist.
 */
const CANDIDATES = [
  new URL('../../web/dist/', import.meta.url),
  new URL('../../../../service/web/dist/', import.meta.url),
];

export function findWebDir(): string | undefined {
  const found = CANDIDATES.find((dir) => existsSync(new URL('index.html', dir)));
  return found && fileURLToPath(found);
}

export const PAGE_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'blob:'],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
};

export const pageRoutes: FastifyPluginAsync<{ webDir?: string; erpnextUrl?: string }> = async (
  app,
  { webDir, erpnextUrl },
) => {
  app.get(
    '/session',
    route({
      operationId: 'session',
      summary: 'What the key in this request may do (for the staff page), and where ERPNext is.',
      tags: ['service'],
      access: 'read',
      response: { 200: Session },
    }),
    async (request) => ({ access: request.grant === 'write' ? 'write' : 'read', erpnext_url: erpnextUrl ?? null }),
  );

  await app.register(async (page) => {
    page.addHook('onRoute', (options) => {
      // @fastify/helmet reads a route's own settings from its config at request time.
      const helmet: FastifyHelmetOptions = { contentSecurityPolicy: PAGE_CSP };
      options.config = { ...options.config, access: 'none', ...{ helmet } };
      options.schema = { ...options.schema, hide: true };
    });
    if (!webDir) {
      app.log.warn('The staff page is not built (run `npm run build:web`): GET / answers 404.');
      page.get('/', async () => {
        throw new ServiceError('not_found', 'The staff page is not built here: run `npm run build:web`, then restart.');
      });
      return;
    }
    await page.register(staticFiles, {
      root: webDir,
      prefix: '/',
      // One route per built file (anything else is the API's JSON 404), `/` for index.html.
      wildcard: false,
      globIgnore: ['**/*.br', '**/*.gz'],
      preCompressed: true,
      cacheControl: false,
      setHeaders: (response, file) => {
        const hashed = /[\\/]app[\\/][^\\/]+$/.test(file);
        response.setHeader('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
        response.setHeader('vary', 'accept-encoding');
      },
    });
  });
};
