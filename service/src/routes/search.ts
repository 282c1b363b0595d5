// POST /search: which catalog items does this photo show? One row per item, best first, each with a
// confidence, and a verdict on the answer (`match`). Optional filter on item fields.
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import { ServiceError } from '../errors.js';
import type { ImageIntake } from '../http/intake.js';
import { route } from '../http/routes.js';
import { ItemFilter, searchForm, SearchResult } from '../schemas/api.js';

const filterCheck = TypeCompiler.Compile(ItemFilter);

/** The `filter` field: JSON of item_group/brand values, each a string or a list of strings. */
export function parseFilter(text: string | undefined): { item_group?: string[]; brand?: string[] } | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ServiceError('invalid_filter', 'The field `filter` is not JSON; send e.g. {"item_group": "Juice"}.');
  }
  if (!filterCheck.Check(parsed)) {
    const error = filterCheck.Errors(parsed).First();
    const where = error?.path ? ` at ${error.path}` : '';
    throw new ServiceError(
      'invalid_filter',
      `The field \`filter\` is wrong${where}: ${error?.message ?? 'not an object'}. Allowed keys: item_group, brand; ` +
        'each a string or a list of strings, e.g. {"item_group": ["Juice", "Milk"], "brand": "Arla"}.',
    );
  }
  const list = (value: string | string[] | undefined) => (value === undefined ? undefined : [value].flat());
  return { item_group: list(parsed.item_group), brand: list(parsed.brand) };
}

export const searchRoutes: FastifyPluginAsync<{
  catalog: Catalog;
  intake: ImageIntake;
  maxTopK: number;
  minConfidence: number;
}> = async (app, { catalog, intake, maxTopK, minConfidence }) => {
  const form = searchForm(maxTopK);
  app.post(
    '/search',
    route({
      operationId: 'search',
      summary: 'Find the catalog items a photo shows.',
      tags: ['search'],
      access: 'read',
      form,
      errors: [
        'invalid_top_k',
        'invalid_filter',
        'invalid_min_confidence',
        'store_unavailable',
        'collection_missing',
        'model_unavailable',
        'model_mismatch',
      ],
      response: { 200: SearchResult },
    }),
    async (request, reply) => {
      const { fields, bytes } = await intake.read(request, reply, form);
      const answer = await catalog.search(bytes, {
        limit: fields.top_k ?? 5,
        filter: parseFilter(fields.filter),
        includeDisabled: fields.include_disabled ?? false,
        minConfidence: fields.min_confidence ?? minConfidence,
      });
      return {
        match: answer.match,
        results: answer.results.map((row) => ({ ...row.record, score: row.score, confidence: row.confidence })),
      };
    },
  );
};
