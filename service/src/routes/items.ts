// The catalog: create an item with its first image, add images, read, rename (PATCH), delete. Sending the
// same image bytes to the same item again (a retried request, a re-run sync) stores nothing new: the
// answer is 200 with the image already stored, instead of 201.
import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import type { ImageIntake } from '../http/intake.js';
import { route } from '../http/routes.js';
import {
  AddImageForm,
  DeletedAll,
  DeletedImage,
  DeletedItem,
  ImageParams,
  IngestForm,
  ItemList,
  ItemLookup,
  ItemParams,
  ItemPatch,
  ItemView,
  StoredImageAnswer,
} from '../schemas/api.js';

/** Items a lookup answers at most (a code shared by more items than this is not a lookup any more). */
const LOOKUP_LIMIT = 50;

export const STORE_ERRORS = ['store_unavailable', 'collection_missing', 'model_unavailable', 'model_mismatch'] as const;

export const itemRoutes: FastifyPluginAsync<{ catalog: Catalog; intake: ImageIntake }> = async (
  app,
  { catalog, intake },
) => {
  app.post(
    '/ingest',
    route({
      operationId: 'ingest',
      summary: 'Create an item with its first image.',
      description:
        'An existing item answers 409 item_exists, unless the image is one it already has (a retried ' +
        'request): then 200 with that image.',
      tags: ['catalog'],
      access: 'write',
      form: IngestForm,
      errors: ['item_exists', 'insufficient_storage', ...STORE_ERRORS],
      response: { 201: StoredImageAnswer, 200: StoredImageAnswer },
    }),
    async (request, reply) => {
      const { fields, bytes } = await intake.read(request, reply, IngestForm);
      const { kind, image_url: _url, ...item } = fields;
      const { record, created, duplicates = [] } = await catalog.ingest(item, bytes, { kind });
      return reply.code(created ? 201 : 200).send({ ...record, duplicates });
    },
  );

  app.get(
    '/items/:item_id',
    route({
      operationId: 'getItem',
      summary: 'An item and its images.',
      tags: ['catalog'],
      access: 'read',
      params: ItemParams,
      errors: ['item_not_found', ...STORE_ERRORS],
      response: { 200: ItemView },
    }),
    async (request) => {
      const { item_id } = request.params as ItemParams;
      const images = await catalog.item(item_id);
      return { ...images[0], images };
    },
  );

  app.get(
    '/items',
    route({
      operationId: 'findItems',
      summary: 'Look items up by id or code (exact), e.g. to add a photo to an item that search did not find.',
      tags: ['catalog'],
      access: 'read',
      querystring: ItemLookup,
      errors: [...STORE_ERRORS],
      response: { 200: ItemList },
    }),
    // Each item as its oldest image: the response schema keeps the item's fields and that image's id.
    async (request) => ({ items: await catalog.findItems((request.query as ItemLookup).q, LOOKUP_LIMIT) }),
  );

  app.patch(
    '/items/:item_id',
    route({
      operationId: 'updateItem',
      summary: "Change an item's fields (name, code) on all its images, without re-embedding.",
      tags: ['catalog'],
      access: 'write',
      params: ItemParams,
      json: ItemPatch,
      errors: ['item_not_found', 'insufficient_storage', ...STORE_ERRORS],
      response: { 200: ItemView },
    }),
    async (request) => {
      const { item_id } = request.params as ItemParams;
      const images = await catalog.updateItem(item_id, request.body as ItemPatch);
      return { ...images[0], images };
    },
  );

  app.post(
    '/items/:item_id/images',
    route({
      operationId: 'addImage',
      summary: 'Add an image to an existing item.',
      description: 'The same bytes as an image the item already has answer 200 with that image.',
      tags: ['catalog'],
      access: 'write',
      params: ItemParams,
      form: AddImageForm,
      errors: ['item_not_found', 'insufficient_storage', ...STORE_ERRORS],
      response: { 201: StoredImageAnswer, 200: StoredImageAnswer },
    }),
    async (request, reply) => {
      const { item_id } = request.params as ItemParams;
      const { fields, bytes } = await intake.read(request, reply, AddImageForm);
      const { record, created, duplicates = [] } = await catalog.addImage(item_id, bytes, { kind: fields.kind });
      return reply.code(created ? 201 : 200).send({ ...record, duplicates });
    },
  );

  app.delete(
    '/items/:item_id',
    route({
      operationId: 'deleteItem',
      summary: 'Delete an item and all its images.',
      tags: ['catalog'],
      access: 'write',
      params: ItemParams,
      errors: ['item_not_found', 'insufficient_storage', ...STORE_ERRORS],
      response: { 200: DeletedItem },
    }),
    async (request) => {
      const { item_id } = request.params as ItemParams;
      const removed = await catalog.deleteItem(item_id);
      return { item_id, deleted_images: removed.length };
    },
  );

  app.delete(
    '/items/:item_id/images/:image_id',
    route({
      operationId: 'deleteImage',
      summary: 'Delete one image of an item (the last one deletes the item).',
      tags: ['catalog'],
      access: 'write',
      params: ImageParams,
      errors: ['image_not_found', 'insufficient_storage', ...STORE_ERRORS],
      response: { 200: DeletedImage },
    }),
    async (request) => {
      const { item_id, image_id } = request.params as ImageParams;
      return catalog.deleteImage(item_id, image_id);
    },
  );

  app.delete(
    '/items',
    route({
      operationId: 'deleteAllItems',
      summary: 'Delete every item and image (the collection itself stays).',
      tags: ['catalog'],
      access: 'write',
      errors: ['insufficient_storage', ...STORE_ERRORS],
      response: { 200: DeletedAll },
    }),
    async () => ({ deleted_images: await catalog.deleteAll() }),
  );
};
