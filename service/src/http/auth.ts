// API key check: every route but /health needs header Image-Search-Api-Key equal to
// IMAGE_SEARCH_API_KEY. Both sides are hashed first so the comparison takes the same time whatever
// the key's length or content.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ServiceError } from '../errors.js';
import { sendError } from './errors.js';

export const API_KEY_HEADER = 'image-search-api-key';
const PUBLIC_ROUTES = new Set(['/health']);

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export const apiKeyAuth = fp(
  async (app: FastifyInstance, options: { apiKey?: string }) => {
    if (!options.apiKey) {
      app.log.warn('IMAGE_SEARCH_API_KEY is not set: the API accepts requests without a key. Set it in production.');
      return;
    }
    const expected = digest(options.apiKey);
    app.addHook('onRequest', async (request, reply) => {
      if (PUBLIC_ROUTES.has(request.routeOptions.url ?? '')) return;
      const given = request.headers[API_KEY_HEADER];
      if (typeof given !== 'string' || given.length === 0) {
        return sendError(
          reply,
          new ServiceError(401, 'unauthorized', 'Missing API key. Send it in the Image-Search-Api-Key header.'),
        );
      }
      if (!timingSafeEqual(digest(given), expected)) {
        return sendError(
          reply,
          new ServiceError(401, 'unauthorized', 'Wrong API key in the Image-Search-Api-Key header.'),
        );
      }
    });
  },
  { name: 'api-key-auth' },
);
