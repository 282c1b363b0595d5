// Who may call what. Each route declares its access in its own config (`none`, `read`, `write`, `hmac`);
// this one hook enforces it, and a route that declares nothing cannot even be registered. Keys travel in
// header Image-Search-Api-Key: IMAGE_SEARCH_API_KEY may do everything, IMAGE_SEARCH_READ_KEY only `read`
// routes (403 elsewhere). Both sides are hashed before a constant-time comparison, so timing reveals
// neither length nor content. With no key configured every route is open (the server then binds to
// 127.0.0.1 unless HOST says otherwise). `hmac` routes check their own signature over the raw body.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ServiceError } from '../errors.js';

export type Access = 'none' | 'read' | 'write' | 'hmac';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

export const API_KEY_HEADER = 'image-search-api-key';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
const matches = (given: Buffer, expected: Buffer | undefined) =>
  expected !== undefined && timingSafeEqual(given, expected);

/** What the key in a request grants: 'write' (full), 'read', or nothing. */
export type Grant = 'write' | 'read' | undefined;

export interface AccessOptions {
  apiKey?: string;
  readKey?: string;
}

export const accessControl = fp(
  async (app: FastifyInstance, options: AccessOptions) => {
    const full = options.apiKey ? digest(options.apiKey) : undefined;
    const read = options.readKey ? digest(options.readKey) : undefined;
    const open = !full && !read;

    // Checked once every plugin has added its routes (a plugin may set its routes' access in its own
    // onRoute hook, which runs after this one).
    const routes: RouteEntry[] = [];
    app.decorate('routeTable', routes);
    app.addHook('onRoute', (route) => void routes.push(route));
    app.addHook('onReady', async () => {
      const undeclared = routes.filter((route) => !route.config?.access);
      if (undeclared.length > 0) {
        const list = undeclared.map((route) => `${String(route.method)} ${route.url}`).join(', ');
        throw new Error(`Routes without a declared access (config.access): ${list}.`);
      }
    });

    const grantOf = (request: FastifyRequest): Grant => {
      if (open) return 'write';
      const given = request.headers[API_KEY_HEADER];
      if (typeof given !== 'string' || given.length === 0) return undefined;
      const hashed = digest(given);
      // Both comparisons always run: which key matched must not show in the timing either.
      const isFull = matches(hashed, full);
      const isRead = matches(hashed, read);
      return isFull ? 'write' : isRead ? 'read' : undefined;
    };
    app.decorateRequest('grant', undefined);

    app.addHook('onRequest', async (request) => {
      const access = request.routeOptions.config.access;
      if (access === 'none' || access === 'hmac' || access === undefined) return; // undefined: no route (404)
      const grant = grantOf(request);
      request.grant = grant;
      if (!grant) {
        const given = request.headers[API_KEY_HEADER];
        throw new ServiceError(
          'unauthorized',
          typeof given === 'string' && given.length > 0
            ? 'Wrong API key in the Image-Search-Api-Key header.'
            : 'Missing API key. Send it in the Image-Search-Api-Key header.',
        );
      }
      if (access === 'write' && grant !== 'write') {
        throw new ServiceError(
          'forbidden',
          'This key may only read (search, embed, items, images). Use the full-access key to change data.',
        );
      }
    });
  },
  { name: 'access-control' },
);

/** A registered route as access control saw it (also lists the routes for the OpenAPI test). */
export interface RouteEntry {
  method: string | string[];
  url: string;
  config?: { access?: Access };
  /** `hide`: not part of the API document (the documentation's and the staff page's own files). */
  schema?: { hide?: boolean };
}

declare module 'fastify' {
  interface FastifyRequest {
    grant: Grant;
  }
  interface FastifyInstance {
    routeTable: RouteEntry[];
  }
}
