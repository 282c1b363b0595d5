// Liveness and readiness. /health answers while the process runs and touches nothing else; /ready says
// whether the store answers and which collection and model are live (for load balancers and operators).
import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import { ServiceError } from '../errors.js';
import { route } from '../http/routes.js';
import { Health, Ready } from '../schemas/api.js';

export const healthRoutes: FastifyPluginAsync<{ catalog: Catalog; storeKind: string }> = async (
  app,
  { catalog, storeKind },
) => {
  app.get(
    '/health',
    route({
      operationId: 'health',
      summary: 'Liveness: the process answers.',
      tags: ['service'],
      access: 'none',
      response: { 200: Health },
    }),
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    route({
      operationId: 'ready',
      summary: 'Readiness: the store answers; the live collection and its model.',
      tags: ['service'],
      access: 'read',
      errors: ['not_ready'],
      response: { 200: Ready },
    }),
    async (request) => {
      try {
        return { status: 'ready' as const, store: storeKind, ...(await catalog.ready()) };
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        request.log.warn({ reason }, 'not ready');
        throw new ServiceError('not_ready', `Not ready: ${reason}`, { 'retry-after': '5' });
      }
    },
  );
};
