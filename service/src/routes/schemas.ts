// Response schemas shared by several route groups. Fastify serializes replies through them, so a
// field that is not declared can never leak into a response.
export const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

export const storedImageSchema = {
  type: 'object',
  required: ['item_id', 'image_id', 'item_name', 'item_code', 'model', 'sha256', 'bytes', 'created_at'],
  properties: {
    item_id: { type: 'string' },
    image_id: { type: 'string' },
    item_name: { type: ['string', 'null'] },
    item_code: { type: ['string', 'null'] },
    model: { type: 'string' },
    sha256: { type: 'string' },
    bytes: { type: 'integer' },
    created_at: { type: 'string' },
  },
} as const;

export const itemIdParams = {
  type: 'object',
  required: ['item_id'],
  properties: { item_id: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;
