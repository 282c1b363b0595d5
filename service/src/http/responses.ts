// Store records → the snake_case JSON the API has always spoken.
import type { ImageRecord, ItemMatch } from '../store/port.js';

export const storedImage = (record: ImageRecord) => ({
  item_id: record.item_id,
  image_id: record.image_id,
  item_name: record.item_name,
  item_code: record.item_code,
  model: record.model,
  sha256: record.sha256,
  bytes: record.bytes,
  created_at: record.created_at,
});

export const searchHit = ({ record, score }: ItemMatch) => ({
  item_id: record.item_id,
  item_name: record.item_name,
  item_code: record.item_code,
  score,
  image_id: record.image_id,
});
