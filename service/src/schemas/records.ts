// The shape of a stored image and its item, defined once. The same snake_case names are the API's JSON,
// the Qdrant payload and the embedded database's columns, so no layer maps field by field: validation,
// TypeScript types, the OpenAPI document and both stores derive from these TypeBox schemas, and
// `recordFrom` reads a stored record back (filling defaults for points written before a field existed).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const Nullable = <T extends TSchema>(schema: T, options: { description?: string } = {}) =>
  Type.Union([schema, Type.Null()], { default: null, ...options });

/** Texts an integrator sends: up to 1024 characters (item ids travel URL-encoded in paths). */
export const ItemId = Type.String({
  minLength: 1,
  maxLength: 1024,
  description: 'Your item id (ERPNext: the Item name).',
});

const ShortText = (description: string) => Nullable(Type.String({ maxLength: 1024 }), { description });

/** What describes an item; every image point of the item carries a copy (PATCH updates them all). */
export const ItemFields = Type.Object({
  item_id: ItemId,
  item_name: ShortText('Display name.'),
  item_code: ShortText('Code, e.g. ERPNext item_code.'),
  item_group: ShortText('Group, e.g. ERPNext item_group; search can filter on it.'),
  brand: ShortText('Brand; search can filter on it.'),
  disabled: Type.Boolean({ default: false, description: 'Disabled items never match unless a search asks.' }),
});
export type ItemFields = Static<typeof ItemFields>;
/** The item fields that can change (PATCH): all but the id. */
export type ItemUpdate = Partial<Omit<ItemFields, 'item_id'>>;

export const ImageKind = Type.Union([Type.Literal('catalog'), Type.Literal('photo')], {
  default: 'catalog',
  description:
    '`catalog`: a picture of the product itself (the ERPNext item image, a studio shot); `photo`: taken in ' +
    'place by staff.',
});
export type ImageKind = Static<typeof ImageKind>;
export const IMAGE_KINDS: ImageKind[] = ['catalog', 'photo'];

export const ImageSource = Type.Union([Type.Literal('api'), Type.Literal('erpnext')], {
  default: 'api',
  description: 'Who stored the image: a caller of this API, or the ERPNext sync.',
});

export const ImageRecord = Type.Object({
  image_id: Type.String({ default: '', description: 'UUID of the stored image (also its point id).' }),
  ...ItemFields.properties,
  kind: ImageKind,
  source: ImageSource,
  source_ref: Nullable(Type.String(), { description: 'ERPNext sync: the file URL the image came from.' }),
  phash: Nullable(Type.String({ pattern: '^[0-9a-f]{16}$' }), {
    description: '64-bit perceptual hash (hex), to spot the same picture resized or re-encoded.',
  }),
  file: Type.String({ default: '', description: 'Path of the original under IMAGE_STORAGE_DIR (forward slashes).' }),
  sha256: Type.String({ default: '', description: 'SHA-256 of the stored bytes (hex).' }),
  bytes: Type.Integer({ default: 0, description: 'Size of the stored original in bytes.' }),
  model: Type.String({ default: '', description: 'Model (sidecar name) that made the vector.' }),
  created_at: Type.String({ default: '', description: 'When it was stored (ISO-8601, UTC).' }),
});
export type ImageRecord = Static<typeof ImageRecord>;

/** Every field of a record, in schema order (also the embedded store's column order). */
export const RECORD_FIELDS = Object.keys(ImageRecord.properties) as Array<keyof ImageRecord>;
export const ITEM_FIELDS = Object.keys(ItemFields.properties) as Array<keyof ItemFields>;
const BOOLEAN_FIELDS = new Set(
  RECORD_FIELDS.filter((key) => (ImageRecord.properties[key] as { type?: string }).type === 'boolean'),
);

/**
 * A record from stored data (a Qdrant payload, a database row): each field as stored when it has the
 * right type, its default otherwise, so points written by older releases or other tools still read.
 */
export function recordFrom(stored: Record<string, unknown>, imageId?: string): ImageRecord {
  const record: Record<string, unknown> = {};
  for (const key of RECORD_FIELDS) {
    let value = stored[key];
    if (BOOLEAN_FIELDS.has(key) && (value === 0 || value === 1)) value = value === 1; // SQLite booleans
    if (key === 'item_id' && typeof value === 'number') value = String(value); // ids stored as numbers
    const schema = ImageRecord.properties[key];
    record[key] = value !== undefined && Value.Check(schema, value) ? value : Value.Default(schema, undefined);
  }
  if (imageId !== undefined) record.image_id = imageId;
  return record as ImageRecord;
}

/** A record's values for storage as columns (booleans as 0/1), in RECORD_FIELDS order. */
export const columnValues = (record: ImageRecord) =>
  RECORD_FIELDS.map((key) => (BOOLEAN_FIELDS.has(key) ? (record[key] ? 1 : 0) : record[key]));

/** The item fields of a record (a new image of an item takes them). */
export const itemFieldsOf = (record: ImageRecord): ItemFields =>
  Object.fromEntries(ITEM_FIELDS.map((key) => [key, record[key]])) as ItemFields;
