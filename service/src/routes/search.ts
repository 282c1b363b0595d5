// POST /search: which catalog items does this photo show? One row per item, best first.
import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import type { ImageIntake } from '../http/intake.js';
import { route } from '../http/routes.js';
import { searchForm, SearchResult } from '../schemas/api.js';

export const searchRoutes: FastifyPluginAsync<{ catalog: Catalog; intake: ImageIntake; maxTopK: number }> = async (
  app,
  { catalog, intake, maxTopK },
) => {
  const form = searchForm(maxTopK);
  app.post(
    '/search',
    route({
      operationId: 'search',
      summary: 'Find the catalog items a photo shows.',
      tags: ['search'],
      access: 'read',
      form,
      errors: ['invalid_top_k', 'store_unavailable', 'collection_missing', 'model_unavailable', 'model_mismatch'],
      response: { 200: SearchResult },
    }),
    async (request, reply) => {
      const { fields, bytes } = await intake.read(request, reply, form);
      const matches = await catalog.search(bytes, fields.top_k ?? 5);
      return { results: matches.map((match) => ({ ...match.record, score: match.score })) };
    },
  );
};
