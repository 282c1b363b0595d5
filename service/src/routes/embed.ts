// POST /embed: the exact vector the service would store for this image (debugging, external indexing).
import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import type { ImageIntake } from '../http/intake.js';
import { route } from '../http/routes.js';
import { EmbedForm, EmbedResult } from '../schemas/api.js';
import { vectorJson } from '../http/vector-json.js';

export const embedRoutes: FastifyPluginAsync<{ catalog: Catalog; intake: ImageIntake }> = async (
  app,
  { catalog, intake },
) => {
  app.post(
    '/embed',
    route({
      operationId: 'embed',
      summary: 'The embedding the service would store for an image.',
      tags: ['search'],
      access: 'read',
      form: EmbedForm,
      errors: ['store_unavailable', 'collection_missing', 'model_unavailable', 'model_mismatch'],
      response: { 200: EmbedResult },
    }),
    async (request, reply) => {
      const { bytes } = await intake.read(request, reply, EmbedForm);
      const { model, dim, vector } = await catalog.embed(bytes);
      // The EmbedResult shape, written directly: the vector's numbers are most of the answer (vector-json.ts).
      reply.type('application/json; charset=utf-8');
      return reply.send(`{"model":${JSON.stringify(model)},"dim":${dim},"vector":${vectorJson(vector)}}`);
    },
  );
};
