import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import type { ImageIntake } from '../../http/intake.js';
import { storedImage } from '../../http/responses.js';
import { errorSchema, itemIdParams, storedImageSchema } from '../schemas.js';
import { deletedAllSchema, deletedItemSchema, itemSchema } from './schemas.js';

type ItemParams = { Params: { item_id: string } };

export const itemRoutes: FastifyPluginAsync<{ catalog: Catalog; intake: ImageIntake }> = async (
  app,
  { catalog, intake },
) => {
  const errors = { '4xx': errorSchema, '5xx': errorSchema };

  app.get<ItemParams>(
    '/items/:item_id',
    { schema: { params: itemIdParams, response: { 200: itemSchema, ...errors } } },
    async (request) => {
      const images = await catalog.item(request.params.item_id);
      const [first] = images;
      return {
        item_id: first.item_id,
        item_name: first.item_name,
        item_code: first.item_code,
        images: images.map((image) => ({
          image_id: image.image_id,
          bytes: image.bytes,
          sha256: image.sha256,
          model: image.model,
          created_at: image.created_at,
        })),
      };
    },
  );

  app.post<ItemParams>(
    '/items/:item_id/images',
    { schema: { params: itemIdParams, response: { 201: storedImageSchema, ...errors } } },
    async (request, reply) => {
      const { bytes } = await intake.read(request);
      return reply.code(201).send(storedImage(await catalog.addImage(request.params.item_id, bytes)));
    },
  );

  app.delete<ItemParams>(
    '/items/:item_id',
    { schema: { params: itemIdParams, response: { 200: deletedItemSchema, ...errors } } },
    async (request) => {
      const removed = await catalog.deleteItem(request.params.item_id);
      return { item_id: request.params.item_id, deleted_images: removed.length };
    },
  );

  app.delete('/items', { schema: { response: { 200: deletedAllSchema, ...errors } } }, async () => ({
    deleted_images: await catalog.deleteAll(),
  }));
};
