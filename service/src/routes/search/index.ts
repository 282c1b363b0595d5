import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { badRequest } from '../../errors.js';
import type { ImageIntake } from '../../http/intake.js';
import { searchHit } from '../../http/responses.js';
import { errorSchema } from '../schemas.js';
import { searchResponseSchema } from './schemas.js';

const DEFAULT_TOP_K = 5;

function topK(raw: string | undefined, max: number): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_TOP_K;
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || value < 1 || value > max) {
    throw badRequest('invalid_top_k', `top_k must be a whole number from 1 to ${max} (got ${JSON.stringify(raw)}).`);
  }
  return value;
}

export const searchRoutes: FastifyPluginAsync<{ catalog: Catalog; intake: ImageIntake; maxTopK: number }> = async (
  app,
  { catalog, intake, maxTopK },
) => {
  app.post(
    '/search',
    { schema: { response: { 200: searchResponseSchema, '4xx': errorSchema, '5xx': errorSchema } } },
    async (request) => {
      const { fields, bytes } = await intake.read(request);
      const limit = topK(fields.top_k, maxTopK);
      return { results: (await catalog.search(bytes, limit)).map(searchHit) };
    },
  );
};
