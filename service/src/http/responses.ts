// Store records → the snake_case JSON the API has always spoken.
import type { ImageRecord, ItemMatch } from '../store/port.js';

export const storedImage = (record: ImageRecord) => ({
  item_id: record.itemId,
  image_id: record.imageId,
  item_name: record.itemName,
  item_code: record.itemCode,
  model: record.model,
  sha256: record.sha256,
  bytes: record.bytes,
  created_at: record.createdAt,
});

export const searchHit = ({ record, score }: ItemMatch) => ({
  item_id: record.itemId,
  item_name: record.itemName,
  item_code: record.itemCode,
  score,
  image_id: record.imageId,
});
