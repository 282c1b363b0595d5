import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import type { ImageIntake } from '../../http/intake.js';
import { errorSchema } from '../schemas.js';
import { embedResponseSchema } from './schemas.js';

export const embedRoutes: FastifyPluginAsync<{ catalog: Catalog; intake: ImageIntake }> = async (
  app,
  { catalog, intake },
) => {
  // The exact vector the service would store for this image: for debugging and external indexing.
  app.post(
    '/embed',
    { schema: { response: { 200: embedResponseSchema, '4xx': errorSchema, '5xx': errorSchema } } },
    async (request) => {
      const { bytes } = await intake.read(request);
      const { model, dim, vector } = await catalog.embed(bytes);
      return { model, dim, vector: Array.from(vector) };
    },
  );
};
