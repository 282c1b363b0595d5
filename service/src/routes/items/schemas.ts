export const itemSchema = {
  type: 'object',
  required: ['item_id', 'item_name', 'item_code', 'images'],
  properties: {
    item_id: { type: 'string' },
    item_name: { type: ['string', 'null'] },
    item_code: { type: ['string', 'null'] },
    images: {
      type: 'array',
      items: {
        type: 'object',
        required: ['image_id', 'bytes', 'sha256', 'model', 'created_at'],
        properties: {
          image_id: { type: 'string' },
          bytes: { type: 'integer' },
          sha256: { type: 'string' },
          model: { type: 'string' },
          created_at: { type: 'string' },
        },
      },
    },
  },
} as const;

export const deletedItemSchema = {
  type: 'object',
  required: ['item_id', 'deleted_images'],
  properties: { item_id: { type: 'string' }, deleted_images: { type: 'integer' } },
} as const;

export const deletedAllSchema = {
  type: 'object',
  required: ['deleted_images'],
  properties: { deleted_images: { type: 'integer' } },
} as const;
