export const embedResponseSchema = {
  type: 'object',
  required: ['model', 'dim', 'vector'],
  properties: {
    model: { type: 'string' },
    dim: { type: 'integer' },
    vector: { type: 'array', items: { type: 'number' } },
  },
} as const;
