export const healthSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' } },
} as const;

export const readySchema = {
  type: 'object',
  required: ['status', 'store', 'collection', 'model', 'dim'],
  properties: {
    status: { type: 'string' },
    store: { type: 'string' },
    collection: { type: 'string' },
    model: { type: 'string' },
    dim: { type: 'integer' },
  },
} as const;
