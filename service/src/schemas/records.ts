// The shape of a stored image and its item, defined once. The same snake_case names are the API's JSON,
// the Qdrant payload and the embedded database's columns, so no layer maps field by field: validation,
// TypeScript types, the OpenAPI document and both stores derive from these TypeBox schemas.
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Texts an integrator sends: up to 1024 characters (item ids travel URL-encoded in paths). */
export const ItemId = Type.String({
  minLength: 1,
  maxLength: 1024,
  description: 'Your item id (ERPNext: the Item name).',
});

/** What describes an item; every image point of the item carries a copy (PATCH updates them all). */
export const ItemFields = Type.Object({
  item_id: ItemId,
  item_name: Nullable(Type.String({ maxLength: 1024, description: 'Display name.' })),
  item_code: Nullable(Type.String({ maxLength: 1024, description: 'Code, e.g. ERPNext item_code.' })),
});
export type ItemFields = Static<typeof ItemFields>;

export const ImageRecord = Type.Object({
  image_id: Type.String({ description: 'UUID of the stored image (also its point id).' }),
  ...ItemFields.properties,
  file: Type.String({ description: 'Path of the original under IMAGE_STORAGE_DIR (forward slashes).' }),
  sha256: Type.String({ description: 'SHA-256 of the stored bytes (hex).' }),
  bytes: Type.Integer({ description: 'Size of the stored original in bytes.' }),
  model: Type.String({ description: 'Model (sidecar name) that made the vector.' }),
  created_at: Type.String({ description: 'When it was stored (ISO-8601, UTC).' }),
});
export type ImageRecord = Static<typeof ImageRecord>;

/** Fields of a record that are not item fields. */
export const IMAGE_ONLY_FIELDS = Object.keys(ImageRecord.properties).filter(
  (key) => !(key in ItemFields.properties),
) as Array<Exclude<keyof ImageRecord, keyof ItemFields>>;
