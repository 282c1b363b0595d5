import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { optionalText, requiredText, type ImageIntake } from '../../http/intake.js';
import { storedImage } from '../../http/responses.js';
import { errorSchema, storedImageSchema } from '../schemas.js';

export const ingestRoutes: FastifyPluginAsync<{ catalog: Catalog; intake: ImageIntake }> = async (
  app,
  { catalog, intake },
) => {
  app.post(
    '/ingest',
    { schema: { response: { 201: storedImageSchema, '4xx': errorSchema, '5xx': errorSchema } } },
    async (request, reply) => {
      const { fields, bytes } = await intake.read(request);
      const record = await catalog.ingest(
        {
          item_id: requiredText(fields, 'item_id'),
          item_name: optionalText(fields, 'item_name'),
          item_code: optionalText(fields, 'item_code'),
        },
        bytes,
      );
      return reply.code(201).send(storedImage(record));
    },
  );
};
