import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { ServiceError } from '../../errors.js';
import { sendError } from '../../http/errors.js';
import { errorSchema } from '../schemas.js';
import { healthSchema, readySchema } from './schemas.js';

export const healthRoutes: FastifyPluginAsync<{ catalog: Catalog; storeKind: string }> = async (
  app,
  { catalog, storeKind },
) => {
  // Liveness only: answers while the process runs, needs no key and touches nothing else.
  app.get('/health', { schema: { response: { 200: healthSchema } } }, async () => ({ status: 'ok' }));

  app.get('/ready', { schema: { response: { 200: readySchema, 503: errorSchema } } }, async (request, reply) => {
    try {
      return { status: 'ready', store: storeKind, ...(await catalog.ready()) };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      request.log.warn({ reason }, 'not ready');
      return sendError(reply, new ServiceError(503, 'not_ready', `Not ready: ${reason}`));
    }
  });
};
