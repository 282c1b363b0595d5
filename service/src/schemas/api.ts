// Request and response bodies of the API, built from the record shapes in records.ts (picked, never
// restated). Fastify validates and serializes with them (a field that is not declared can never leak into
// a response), TypeScript types come from them, and @fastify/swagger turns them into the OpenAPI document.
// Multipart forms are declared here too: the intake checks the fields against them, and the OpenAPI
// document shows them as the request body.
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { THUMBNAIL_SIZES } from '../images/thumbnail.js';
import { ImageKind, ImageRecord, ItemFields, ItemId, Nullable } from './records.js';

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'Stable code (see the error table in the README).' }),
    message: Type.String({ description: 'What went wrong and what to do.' }),
  },
  { $id: 'ErrorBody' },
);

/** A stored image as the API shows it (the file path on disk stays internal). */
export const StoredImage = Type.Omit(ImageRecord, ['file'], { $id: 'StoredImage' });
export type StoredImage = Static<typeof StoredImage>;

/** Another item's copy of an image just stored (a warning: nothing is refused). */
export const Duplicate = Type.Object({
  item_id: ItemId,
  image_id: Type.String({ description: "The other item's image." }),
  score: Type.Number({ description: 'Cosine similarity of the two embeddings (1 for the same bytes).' }),
  reason: Type.Union([Type.Literal('same_bytes'), Type.Literal('near_copy')], {
    description: '`same_bytes`: an identical file; `near_copy`: the same picture resized, re-encoded or cropped.',
  }),
});
export type Duplicate = Static<typeof Duplicate>;

/** The answer to ingest and add image: the stored image, and other items that already have a copy of it. */
export const StoredImageAnswer = Type.Object(
  {
    ...StoredImage.properties,
    duplicates: Type.Array(Duplicate, {
      description: 'Images of other items that are copies of this one (the product entered twice?); usually [].',
    }),
  },
  { $id: 'StoredImageAnswer' },
);

/** One image in an item view: the image's own fields, not the item's. */
export const ItemImage = Type.Pick(ImageRecord, [
  'image_id',
  'kind',
  'source',
  'source_ref',
  'bytes',
  'sha256',
  'phash',
  'model',
  'created_at',
]);

export const ItemView = Type.Object(
  { ...ItemFields.properties, images: Type.Array(ItemImage) },
  { $id: 'Item', description: 'An item and its images, oldest first.' },
);

export const ItemParams = Type.Object({ item_id: ItemId });
export type ItemParams = Static<typeof ItemParams>;
export const ImageParams = Type.Object({ item_id: ItemId, image_id: Type.String({ minLength: 1, maxLength: 64 }) });
export type ImageParams = Static<typeof ImageParams>;

/** PATCH /items/{item_id}: the item fields that may change (not the id); at least one. */
export const ItemPatch = Type.Partial(Type.Omit(ItemFields, ['item_id']), {
  additionalProperties: false,
  minProperties: 1,
  $id: 'ItemPatch',
});
export type ItemPatch = Static<typeof ItemPatch>;

export const SearchHit = Type.Composite([
  Type.Pick(ImageRecord, ['item_id', 'item_name', 'item_code', 'item_group', 'brand']),
  Type.Object({
    score: Type.Number({ description: "The item's score (from all its images), best first." }),
    confidence: Type.Number({ minimum: 0, maximum: 1, description: 'How likely this row is the right item.' }),
  }),
  Type.Pick(ImageRecord, ['image_id', 'kind']),
]);
export const Match = Type.Union([Type.Literal('confident'), Type.Literal('uncertain'), Type.Literal('none')], {
  description:
    '`confident`: the first row is very likely right; `uncertain`: look at the rows; `none`: the photo most ' +
    'likely shows nothing in the catalog.',
});
export const SearchResult = Type.Object(
  { match: Match, results: Type.Array(SearchHit, { description: 'One row per item, best first.' }) },
  { $id: 'SearchResult' },
);

/** Search filter: exact values of item fields; a string or any of a list. */
const FilterValues = Type.Union([
  Type.String({ minLength: 1, maxLength: 1024 }),
  Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { minItems: 1, maxItems: 100 }),
]);
export const ItemFilter = Type.Object(
  { item_group: Type.Optional(FilterValues), brand: Type.Optional(FilterValues) },
  { additionalProperties: false },
);
export type ItemFilter = Static<typeof ItemFilter>;

export const EmbedResult = Type.Object({
  model: Type.String(),
  dim: Type.Integer(),
  vector: Type.Array(Type.Number(), { description: 'Unit-length embedding, as the service stores it.' }),
});

export const DeletedItem = Type.Object({ item_id: ItemId, deleted_images: Type.Integer() });
export const DeletedImage = Type.Pick(ImageRecord, ['item_id', 'image_id']);
export const DeletedAll = Type.Object({ deleted_images: Type.Integer() });
export const Health = Type.Object({ status: Type.Literal('ok') });
export const Ready = Type.Object({
  status: Type.Literal('ready'),
  store: Type.String({ description: 'embedded or qdrant' }),
  collection: Type.String({ description: 'The collection QDRANT_COLLECTION resolves to.' }),
  model: Type.String(),
  model_sha256: Type.String({
    description: "SHA-256 of the model file that embeds for it: the model's identity by its weights.",
  }),
  dim: Type.Integer(),
});

// ---- multipart forms (text fields; the image comes as a `file` part or an `image_url` field) ----

/** A form text field that may be blank (blank = absent). */
const OptionalText = (description: string) =>
  Type.Optional(Type.String({ maxLength: 1024, description: `${description} Blank = not given.` }));

const ImageSource = {
  image_url: Type.Optional(
    Type.String({ maxLength: 8192, description: 'http(s) URL of the image, instead of a `file` part.' }),
  ),
};

const KindField = { kind: Type.Optional(ImageKind) };

export const IngestForm = Type.Object({
  item_id: ItemId,
  item_name: OptionalText('Display name.'),
  item_code: OptionalText('Code, e.g. ERPNext item_code.'),
  item_group: OptionalText('Group (filterable).'),
  brand: OptionalText('Brand (filterable).'),
  disabled: Type.Optional(Type.Boolean({ description: '`true` or `false` (default false).' })),
  ...KindField,
  ...ImageSource,
});

export const AddImageForm = Type.Object({ ...KindField, ...ImageSource });
export const EmbedForm = Type.Object({ ...ImageSource });

export const searchForm = (maxTopK: number) =>
  Type.Object({
    filter: Type.Optional(
      Type.String({
        maxLength: 16384,
        description:
          'JSON: `{"item_group": "Juice"}` or `{"item_group": ["Juice", "Milk"], "brand": "Arla"}` (keys ' +
          '`item_group`, `brand`; a value or any of a list).',
        'x-error-code': 'invalid_filter',
      }),
    ),
    include_disabled: Type.Optional(Type.Boolean({ description: 'Also match disabled items (default false).' })),
    min_confidence: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: 'Drop rows below this confidence (default MIN_CONFIDENCE).',
        'x-error-code': 'invalid_min_confidence',
      }),
    ),
    top_k: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: maxTopK,
        default: 5,
        description: 'Items to return.',
        'x-error-code': 'invalid_top_k',
      }),
    ),
    ...ImageSource,
  });

export type Form<T extends TProperties> = Static<TObject<T>>;

// ---- the staff page: who is signed in, item lookup, stored images ----

export const Session = Type.Object(
  {
    access: Type.Union([Type.Literal('read'), Type.Literal('write')], {
      description: '`write`: the key may also add and delete images; `read`: search and look only.',
    }),
    erpnext_url: Nullable(Type.String(), { description: 'ERPNEXT_URL, for links to the items in ERPNext.' }),
  },
  { $id: 'Session' },
);

export const ItemLookup = Type.Object({
  q: Type.String({ minLength: 1, maxLength: 1024, description: 'An item id or an item code (exact).' }),
});
export type ItemLookup = Static<typeof ItemLookup>;

/** An item found by lookup: its fields and its oldest image (its picture). */
export const ItemHit = Type.Composite([ItemFields, Type.Pick(ImageRecord, ['image_id'])]);
export const ItemList = Type.Object(
  { items: Type.Array(ItemHit, { description: 'The item with that id first, then those with that code.' }) },
  { $id: 'ItemList' },
);

export const ImageIdParams = Type.Pick(ImageParams, ['image_id']);
export type ImageIdParams = Static<typeof ImageIdParams>;

export const ThumbnailQuery = Type.Object({
  size: Type.Optional(
    Type.Union(
      THUMBNAIL_SIZES.map((size) => Type.Literal(String(size))),
      { description: `Long side in pixels: ${THUMBNAIL_SIZES.join(', ')} (default 256).` },
    ),
  ),
});
export type ThumbnailQuery = Static<typeof ThumbnailQuery>;

/** An image body in a response (the OpenAPI document shows it as binary of these types). */
export const imageBody = (description: string, types: string[]) =>
  Type.Unsafe<Buffer>({
    description,
    content: Object.fromEntries(types.map((type) => [type, { schema: { type: 'string', format: 'binary' } }])),
  });

export const NotModified = Type.Null({ description: 'Not modified: the ETag sent in If-None-Match is current.' });

/** POST /webhooks/erpnext: the Item a webhook named, queued for a reconcile. */
export const WebhookAccepted = Type.Object(
  {
    item_id: ItemId,
    queued: Type.Boolean({
      description: 'False when the queue was full: the next scheduled sync applies the change instead.',
    }),
  },
  { $id: 'WebhookAccepted' },
);

/** The body an ERPNext Webhook sends (its JSON request body template `{"name": "{{ doc.name }}"}`). */
export const WebhookBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 140, description: 'The Item name (doc.name).' }) },
  { description: 'Read raw, whatever its Content-Type: the signature covers the exact bytes.' },
);
