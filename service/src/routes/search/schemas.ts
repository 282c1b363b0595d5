export const searchResponseSchema = {
  type: 'object',
  required: ['results'],
  properties: {
    results: {
      type: 'array',
      items: {
        type: 'object',
        required: ['item_id', 'item_name', 'item_code', 'score', 'image_id'],
        properties: {
          item_id: { type: 'string' },
          item_name: { type: ['string', 'null'] },
          item_code: { type: ['string', 'null'] },
          score: { type: 'number' },
          image_id: { type: 'string' },
        },
      },
    },
  },
} as const;
