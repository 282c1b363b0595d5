// The Qdrant adapter of the vector-store port, through @qdrant/js-client-rest only.
//
// Layout: one cosine collection per model (one unnamed dense vector), one point per image with the
// image id (a UUID) as point id, a snake_case payload, and a keyword index on item_id for the item
// filters. Collections record {model, dim} in Qdrant's collection metadata.
//
// Every write passes wait: true. Without it Qdrant acknowledges a write before applying it, so a read
// right after could miss it; the client leaves `wait` unset for delete and createPayloadIndex.
import {
  QdrantClient,
  QdrantClientResourceExhaustedError,
  QdrantClientTimeoutError,
  type Schemas,
} from '@qdrant/js-client-rest';
import { createHash } from 'node:crypto';
import { IMAGE_KINDS, ItemFields, itemFieldsOf, recordFrom, type ImageKind } from '../../schemas/records.js';
import {
  StoreUnavailableError,
  type Collection,
  type CollectionInfo,
  type ImageRecord,
  type ItemMatch,
  type CentroidMatch,
  type KindCentroid,
  type ScrollPage,
  type SearchOptions,
  type VectorStore,
} from '../port.js';

export interface QdrantStoreOptions {
  /** Full URL (http://qdrant:6333). The client turns a bare host plus an API key into https. */
  url: string;
  apiKey?: string;
  /** Time allowed for one request (ms); a Qdrant that does not answer in time counts as down. */
  timeoutMs?: number;
  /** prepareIndex: how often to look at the collection status, and for how long at most (ms). */
  indexPollMs?: number;
  indexTimeoutMs?: number;
}

/** A request Qdrant refused (4xx other than auth): a bug in the request, not an outage. */
export class QdrantRequestError extends Error {
  override name = 'QdrantRequestError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Points per upsert request: 256 × 1280-d floats as JSON stay far below Qdrant's 32 MiB body limit. */
const UPSERT_BATCH = 256;
/** Images per item that scoreImages asks for (the best ones; an item rarely has more). */
/** Points per page when reading all images of an item. */
const ITEM_PAGE = 256;

/**
 * Points written by other tools (e.g. the original service) may lack fields; missing ones read as their
 * defaults so that scrolls and migrations report them instead of failing on them.
 */
const toRecord = (id: string | number, payload: Record<string, unknown> | null | undefined): ImageRecord =>
  recordFrom(payload ?? {}, String(id));

const toVector = (vector: unknown): Float32Array | undefined =>
  Array.isArray(vector) ? Float32Array.from(vector as number[]) : undefined;
/**
 * Item centroids (item-level scoring) are points of the same collection, marked by this payload field
 * with their kind; every query for images leaves them out, and they carry the item's fields so that
 * PATCH (set_payload by item_id) and filters reach them too. Their ids derive from item and kind.
 */
const CENTROID = 'centroid_of_kind';
const IS_CENTROID: Schemas['Condition'] = { key: CENTROID, match: { any: IMAGE_KINDS } };
/** Set on one centroid of each item (of its first kind with images), so that counting items is one count. */
const COUNTS_ITEM = 'counts_item';
const itemMarkers: Schemas['Filter'] = { must: [IS_CENTROID, { key: COUNTS_ITEM, match: { value: true } }] };
/** All points of an item: its images and its centroids. */
const itemFilter = (itemId: string): Schemas['Filter'] => ({ must: [{ key: 'item_id', match: { value: itemId } }] });
/** The images of an item. */
const itemImagesFilter = (itemId: string): Schemas['Filter'] => ({ ...itemFilter(itemId), must_not: [IS_CENTROID] });
const imagesOnly: Schemas['Filter'] = { must_not: [IS_CENTROID] };

/** The point id of an item's centroid of a kind: a UUID (version 5 layout) derived from both. */
export function centroidId(itemId: string, kind: ImageKind): string {
  const hash = createHash('sha1').update(`centroid\u0000${itemId}\u0000${kind}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Payload indexes every collection has: the item id (reads, deletes) and the fields searches filter on. */
const PAYLOAD_INDEXES: Array<{ field: string; schema: 'keyword' | 'bool' }> = [
  { field: 'item_id', schema: 'keyword' },
  { field: 'item_group', schema: 'keyword' },
  { field: 'brand', schema: 'keyword' },
  { field: 'disabled', schema: 'bool' },
  { field: 'kind', schema: 'keyword' },
  { field: CENTROID, schema: 'keyword' },
  { field: COUNTS_ITEM, schema: 'bool' },
];

/** A search's filter in Qdrant's terms (undefined: none). Points without `disabled` (older ones) count as enabled. */
function searchFilter(options: SearchOptions): { must: Schemas['Condition'][]; must_not: Schemas['Condition'][] } {
  const must: Schemas['Condition'][] = [];
  for (const field of ['item_group', 'brand'] as const) {
    const values = options.filter?.[field];
    if (values) must.push({ key: field, match: { any: values } });
  }
  const mustNot: Schemas['Condition'][] = options.includeDisabled ? [] : [{ key: 'disabled', match: { value: true } }];
  return { must, must_not: mustNot };
}

/** Where an error came from: the connection, the server, or the request. */
function classify(error: unknown): { kind: 'down' | 'auth' | 'server' | 'request'; status?: number; detail: string } {
  if (error instanceof QdrantClientTimeoutError)
    return { kind: 'down', detail: 'no answer within the request timeout' };
  if (error instanceof QdrantClientResourceExhaustedError)
    return { kind: 'server', status: 429, detail: `rate limited (${error.message})` };
  // The client's failed responses carry the HTTP status and Qdrant's body ({status: {error}}).
  const response = error as { status?: unknown; data?: { status?: { error?: unknown } } };
  if (error instanceof Error && typeof response.status === 'number') {
    const detail = typeof response.data?.status?.error === 'string' ? response.data.status.error : error.message;
    if (response.status === 401 || response.status === 403) return { kind: 'auth', status: response.status, detail };
    if (response.status >= 500 || response.status === 429) return { kind: 'server', status: response.status, detail };
    return { kind: 'request', status: response.status, detail };
  }
  // fetch (undici) fails with TypeError('fetch failed') and the socket error as its cause.
  if (error instanceof TypeError) {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const code = typeof cause?.code === 'string' ? cause.code : undefined;
    const message = typeof cause?.message === 'string' ? cause.message : error.message;
    return { kind: 'down', detail: code ? `${code}: ${message}` : message };
  }
  return { kind: 'request', detail: error instanceof Error ? error.message : String(error) };
}

export class QdrantStore implements VectorStore {
  readonly kind = 'qdrant' as const;
  readonly client: QdrantClient;
  /** The URL without credentials, for messages. */
  private readonly where: string;

  constructor(private readonly options: QdrantStoreOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new Error(
        `QDRANT_URL=${JSON.stringify(options.url)} is not a URL; use a full URL such as http://qdrant:6333.`,
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new Error(`QDRANT_URL must start with http:// or https:// (got ${parsed.protocol}).`);
    }
    parsed.username = '';
    parsed.password = '';
    this.where = parsed.toString().replace(/\/$/, '');
    // A full `url` keeps the scheme we were given: with `host` + `apiKey` the client would switch to
    // https. checkCompatibility stays on: it only warns, and a client/server version gap is worth a warning.
    this.client = new QdrantClient({ url: options.url, apiKey: options.apiKey, timeout: options.timeoutMs ?? 60_000 });
  }

  /** Runs one client call; outages become StoreUnavailableError, refused requests QdrantRequestError. */
  async call<T>(what: string, run: (client: QdrantClient) => Promise<T>): Promise<T> {
    try {
      return await run(this.client);
    } catch (error) {
      const { kind, status, detail } = classify(error);
      switch (kind) {
        case 'down':
          throw new StoreUnavailableError(
            `Qdrant at QDRANT_URL=${this.where} does not answer (${what}: ${detail}). Check that Qdrant is ` +
              `running and reachable from this host and that QDRANT_URL is right.`,
          );
        case 'auth':
          throw new StoreUnavailableError(
            `Qdrant at QDRANT_URL=${this.where} refused the API key (${what}: ${status} ${detail}). Check ` +
              `QDRANT_API_KEY against Qdrant's service.api_key.`,
          );
        case 'server':
          throw new StoreUnavailableError(
            `Qdrant at QDRANT_URL=${this.where} failed (${what}: ${status} ${detail}). Check Qdrant's log, its ` +
              `disk space and memory.`,
          );
        default:
          throw new QdrantRequestError(status ?? 0, `Qdrant refused ${what}${status ? ` (${status})` : ''}: ${detail}`);
      }
    }
  }

  /** Like call(), but a 404 (no such collection) gives `absent` instead of an error. */
  async callOr<T, A>(what: string, absent: A, run: (client: QdrantClient) => Promise<T>): Promise<T | A> {
    try {
      return await this.call(what, run);
    } catch (error) {
      if (error instanceof QdrantRequestError && error.status === 404) return absent;
      throw error;
    }
  }

  async ping(): Promise<void> {
    // Listing collections needs the API key, so this also proves the key works.
    await this.call('listing collections', (c) => c.getCollections());
  }

  collection(name: string): Collection {
    return new QdrantCollection(this, name);
  }

  async listAliases(): Promise<Record<string, string>> {
    const { aliases } = await this.call('listing aliases', (c) => c.getAliases());
    return Object.fromEntries(aliases.map((a) => [a.alias_name, a.collection_name]));
  }

  async listCollections(): Promise<CollectionInfo[]> {
    const { collections } = await this.call('listing collections', (c) => c.getCollections());
    const infos = await Promise.all(collections.map(({ name }) => this.describe(name)));
    return infos
      .filter((info): info is CollectionInfo => info !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Width, model and exact size of a real collection (not an alias); undefined when it does not exist. */
  async describe(name: string): Promise<CollectionInfo | undefined> {
    const info = await this.callOr(`reading collection ${name}`, undefined, (c) => c.getCollection(name));
    if (!info) return undefined;
    const vectors = info.config.params.vectors;
    const size = vectors && typeof vectors === 'object' && 'size' in vectors ? vectors.size : undefined;
    if (typeof size !== 'number') {
      throw new Error(`Qdrant collection ${name} uses named vectors; this service needs one unnamed vector per point.`);
    }
    const metadata = info.config.metadata;
    const count = await this.callOr(`counting points of ${name}`, undefined, (c) =>
      c.count(name, { filter: imagesOnly, exact: true }),
    );
    if (!count) return undefined;
    const text = (key: string) => (typeof metadata?.[key] === 'string' ? metadata[key] : null);
    return { name, dim: size, model: text('model'), modelSha256: text('model_sha256'), points: count.count };
  }

  /** The collection an alias (or collection) name addresses. */
  async resolve(name: string): Promise<string> {
    const aliases = await this.listAliases();
    return aliases[name] ?? name;
  }

  async createCollection(name: string, dim: number, model: string, modelSha256?: string): Promise<void> {
    // The client's createCollection() drops `metadata`; its generated API passes the whole body.
    await this.call(`creating collection ${name}`, (c) =>
      c.api().createCollection({
        collection_name: name,
        vectors: { size: dim, distance: 'Cosine' },
        metadata: { model, dim, ...(modelSha256 ? { model_sha256: modelSha256 } : {}) },
      }),
    );
    try {
      await this.ensureSchema(name);
    } catch (error) {
      // Without its index the collection is half made; remove it so that a retry starts clean.
      await this.call(`removing half-created collection ${name}`, (c) => c.deleteCollection(name)).catch(
        () => undefined,
      );
      throw error;
    }
  }

  /** Creates the payload indexes a collection lacks (collections made by older releases gain new ones). */
  async ensureSchema(collection: string): Promise<void> {
    const info = await this.call(`reading collection ${collection}`, (c) => c.getCollection(collection));
    const present = new Set(Object.keys(info.payload_schema ?? {}));
    for (const { field, schema } of PAYLOAD_INDEXES) {
      if (present.has(field)) continue;
      await this.call(`creating the ${field} index of ${collection}`, (c) =>
        c.createPayloadIndex(collection, { field_name: field, field_schema: schema, wait: true }),
      );
    }
    // Points written by releases before image kinds have no `kind` (they are catalog pictures) and their
    // items no centroids, which search ranks by: give them both, once.
    await this.call(`marking the older images of ${collection} as catalog images`, (c) =>
      c.setPayload(collection, {
        payload: { kind: 'catalog' },
        filter: { must: [{ is_empty: { key: 'kind' } }], must_not: [IS_CENTROID] },
        wait: true,
      }),
    );
    const count = (filter: Schemas['Filter']) =>
      this.call(`counting the points of ${collection}`, (c) => c.count(collection, { filter, exact: true }));
    const [images, centroids, markers] = await Promise.all([
      count(imagesOnly),
      count({ must: [IS_CENTROID] }),
      count(itemMarkers),
    ]);
    // Centroids written before items were counted lack the marker: rebuilding them adds it.
    if (images.count > 0 && (centroids.count === 0 || markers.count === 0)) {
      await this.collection(collection).rebuildCentroids();
    }
  }

  async deleteCollection(name: string): Promise<void> {
    await this.call(`deleting collection ${name}`, (c) => c.deleteCollection(name));
  }

  async setAlias(alias: string, collection: string): Promise<void> {
    // Qdrant 1.18 applies alias actions one by one and keeps those before a failing one, so a
    // missing target would leave the alias deleted: check the target first, among real collections
    // (collectionExists also says yes for an alias, which create_alias refuses).
    const { collections } = await this.call('listing collections', (c) => c.getCollections());
    if (!collections.some((c) => c.name === collection)) {
      throw new QdrantRequestError(404, `Cannot point alias ${alias} at ${collection}: no such collection.`);
    }
    const current = await this.listAliases();
    const actions: Schemas['AliasOperations'][] = [];
    if (alias in current) actions.push({ delete_alias: { alias_name: alias } });
    actions.push({ create_alias: { alias_name: alias, collection_name: collection } });
    // One request: Qdrant applies its actions under one lock, so no search sees the alias missing.
    await this.call(`pointing alias ${alias} at ${collection}`, (c) => c.updateCollectionAliases({ actions }));
  }

  async prepareIndex(collection: string): Promise<void> {
    const pollMs = this.options.indexPollMs ?? 500;
    const deadline = Date.now() + (this.options.indexTimeoutMs ?? 30 * 60_000);
    for (;;) {
      const info = await this.call(`reading collection ${collection}`, (c) => c.getCollection(collection));
      if (info.status === 'green') return;
      if (info.status === 'red')
        throw new Error(`Qdrant collection ${collection} is red (an optimizer failed); see Qdrant's log.`);
      if (Date.now() > deadline) {
        throw new Error(
          `Qdrant collection ${collection} is still ${info.status} (indexing) after ` +
            `${Math.round((this.options.indexTimeoutMs ?? 30 * 60_000) / 1000)} s.`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  async close(): Promise<void> {
    // The client holds no resources that need closing (its HTTP agent idles out on its own).
  }
}

class QdrantCollection implements Collection {
  constructor(
    private readonly store: QdrantStore,
    readonly name: string,
  ) {}

  async info(): Promise<CollectionInfo | undefined> {
    return this.store.describe(await this.store.resolve(this.name));
  }

  async upsert(record: ImageRecord, vector: Float32Array): Promise<void> {
    await this.upsertMany([{ record, vector }]);
  }

  async upsertMany(points: Array<{ record: ImageRecord; vector: Float32Array }>): Promise<void> {
    for (let start = 0; start < points.length; start += UPSERT_BATCH) {
      const batch = points.slice(start, start + UPSERT_BATCH).map(({ record, vector }) => ({
        id: record.image_id,
        vector: Array.from(vector),
        payload: { ...record } as Record<string, unknown>,
      }));
      await this.store.call(`writing ${batch.length} point(s) to ${this.name}`, (c) =>
        c.upsert(this.name, { wait: true, points: batch }),
      );
    }
    await this.refreshCentroids(points.map((p) => p.record.item_id));
  }

  /** Images of an item with their vectors, page by page. */
  private async imagesWithVectors(itemId: string): Promise<Array<{ record: ImageRecord; vector: Float32Array }>> {
    const found: Array<{ record: ImageRecord; vector: Float32Array }> = [];
    let offset: Schemas['ExtendedPointId'] | undefined;
    do {
      const page = await this.store.call(`reading the images of item ${JSON.stringify(itemId)}`, (c) =>
        c.scroll(this.name, {
          filter: itemImagesFilter(itemId),
          limit: ITEM_PAGE,
          offset,
          with_payload: true,
          with_vector: true,
        }),
      );
      for (const point of page.points) {
        const vector = toVector(point.vector);
        if (vector) found.push({ record: toRecord(point.id, point.payload), vector });
      }
      const next = page.next_page_offset;
      offset = typeof next === 'string' || typeof next === 'number' ? next : undefined;
    } while (offset !== undefined);
    return found;
  }

  /** Makes the items' centroid points match their images (one per kind they have images of). */
  private async refreshCentroids(itemIds: Iterable<string>): Promise<void> {
    for (const itemId of new Set(itemIds)) {
      const images = await this.imagesWithVectors(itemId);
      const points: Array<{ id: string; vector: number[]; payload: Record<string, unknown> }> = [];
      const gone: string[] = [];
      for (const kind of IMAGE_KINDS) {
        const ofKind = images.filter((image) => image.record.kind === kind);
        if (ofKind.length === 0) {
          gone.push(centroidId(itemId, kind));
          continue;
        }
        const sum = new Float64Array(ofKind[0]!.vector.length);
        for (const { vector } of ofKind) for (let i = 0; i < sum.length; i++) sum[i]! += vector[i]!;
        const norm = Math.sqrt(sum.reduce((total, x) => total + x * x, 0)) || 1;
        const newest = ofKind.reduce((a, b) => (a.record.created_at >= b.record.created_at ? a : b)).record;
        points.push({
          id: centroidId(itemId, kind),
          vector: Array.from(sum, (x) => x / norm),
          payload: {
            ...itemFieldsOf(newest),
            [CENTROID]: kind,
            count: ofKind.length,
            [COUNTS_ITEM]: points.length === 0,
          },
        });
      }
      if (points.length > 0) {
        await this.store.call(`writing the centroids of ${JSON.stringify(itemId)}`, (c) =>
          c.upsert(this.name, { wait: true, points }),
        );
      }
      if (gone.length > 0) {
        await this.store.callOr(`removing centroids of ${JSON.stringify(itemId)}`, undefined, (c) =>
          c.delete(this.name, { wait: true, points: gone }),
        );
      }
    }
  }

  async image(imageId: string): Promise<ImageRecord | undefined> {
    const found = await this.store.callOr(`reading image ${imageId} from ${this.name}`, [], (c) =>
      c.retrieve(this.name, { ids: [imageId], with_payload: true, with_vector: false }),
    );
    const [point] = found;
    // A centroid's id is derived from its item, so anyone may ask for it: it is not an image.
    return point && point.payload?.[CENTROID] === undefined ? toRecord(point.id, point.payload) : undefined;
  }

  async itemImages(itemId: string): Promise<ImageRecord[]> {
    return this.imagesWhere(itemImagesFilter(itemId), `the images of item ${JSON.stringify(itemId)}`);
  }

  async imagesByCode(code: string): Promise<ImageRecord[]> {
    return this.imagesWhere(
      { must: [{ key: 'item_code', match: { value: code } }], must_not: [IS_CENTROID] },
      `the images of code ${JSON.stringify(code)}`,
    );
  }

  /** Every image the filter keeps, oldest first; [] when the collection does not exist. */
  private async imagesWhere(filter: Schemas['Filter'], what: string): Promise<ImageRecord[]> {
    const records: ImageRecord[] = [];
    let offset: Schemas['ExtendedPointId'] | undefined;
    do {
      const page = await this.store.callOr(`reading ${what} from ${this.name}`, undefined, (c) =>
        c.scroll(this.name, { filter, limit: ITEM_PAGE, offset, with_payload: true, with_vector: false }),
      );
      if (!page) return [];
      records.push(...page.points.map((p) => toRecord(p.id, p.payload)));
      const next = page.next_page_offset;
      offset = typeof next === 'string' || typeof next === 'number' ? next : undefined;
    } while (offset !== undefined);
    // Oldest first; the image id breaks ties so that the order is stable.
    return records.sort((a, b) =>
      a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.image_id < b.image_id ? -1 : 1,
    );
  }

  async searchItems(vector: Float32Array, limit: number, options: SearchOptions = {}): Promise<ItemMatch[]> {
    if (limit <= 0) return [];
    // One group per item with its single best image; Qdrant orders the groups by that image's score.
    const filter = searchFilter(options);
    const { groups } = await this.store.call(`searching ${this.name}`, (c) =>
      c.queryGroups(this.name, {
        query: Array.from(vector),
        filter: { ...filter, must_not: [...filter.must_not, IS_CENTROID] },
        group_by: 'item_id',
        group_size: 1,
        limit,
        with_payload: true,
        with_vector: false,
      }),
    );
    return groups.flatMap((group) => {
      const [best] = group.hits;
      return best ? [{ record: toRecord(best.id, best.payload), score: best.score }] : [];
    });
  }

  async searchCentroids(
    vector: Float32Array,
    kind: ImageKind,
    limit: number,
    options: SearchOptions = {},
  ): Promise<CentroidMatch[]> {
    if (limit <= 0) return [];
    const filter = searchFilter(options);
    const found = await this.store.callOr(`searching the ${kind} centroids of ${this.name}`, undefined, (c) =>
      c.query(this.name, {
        query: Array.from(vector),
        filter: { ...filter, must: [...filter.must, { key: CENTROID, match: { value: kind } }] },
        limit,
        with_payload: ['item_id'],
        with_vector: false,
      }),
    );
    return (found?.points ?? []).map((point) => ({
      item_id: recordFrom(point.payload ?? {}).item_id,
      score: point.score,
    }));
  }

  async centroidsOf(itemIds: string[]): Promise<KindCentroid[]> {
    if (itemIds.length === 0) return [];
    const ids = itemIds.flatMap((itemId) => IMAGE_KINDS.map((kind) => centroidId(itemId, kind)));
    const points = await this.store.callOr(`reading centroids from ${this.name}`, [], (c) =>
      c.retrieve(this.name, { ids, with_payload: true, with_vector: true }),
    );
    return points.flatMap((point) => {
      const payload = (point.payload ?? {}) as { item_id?: unknown; count?: unknown; [CENTROID]?: unknown };
      const vector = toVector(point.vector);
      const kind = payload[CENTROID];
      if (!vector || (kind !== 'catalog' && kind !== 'photo')) return [];
      return [{ item_id: String(payload.item_id), kind, count: Number(payload.count ?? 0), vector }];
    });
  }

  async sampleCentroids(kind: ImageKind, limit: number): Promise<Float32Array[]> {
    // Centroid ids are hashes, so the first ones in id order are a sample spread over the collection.
    const page = await this.store.callOr(`sampling the ${kind} centroids of ${this.name}`, undefined, (c) =>
      c.scroll(this.name, {
        filter: { must: [{ key: CENTROID, match: { value: kind } }] },
        limit,
        with_payload: false,
        with_vector: true,
      }),
    );
    return (page?.points ?? []).flatMap((point) => toVector(point.vector) ?? []);
  }

  async scoreImages(vector: Float32Array, itemIds: string[]): Promise<ItemMatch[]> {
    if (itemIds.length === 0) return [];
    // One grouped query per kind: the best image of that kind of each item, however many images it has.
    const perKind = await Promise.all(
      IMAGE_KINDS.map((kind) =>
        this.store.call(`scoring the ${kind} images of ${itemIds.length} item(s)`, (c) =>
          c.queryGroups(this.name, {
            query: Array.from(vector),
            filter: {
              must: [
                { key: 'item_id', match: { any: itemIds } },
                { key: 'kind', match: { value: kind } },
              ],
              must_not: [IS_CENTROID],
            },
            group_by: 'item_id',
            group_size: 1,
            limit: itemIds.length,
            with_payload: true,
            with_vector: false,
          }),
        ),
      ),
    );
    return perKind
      .flatMap(({ groups }) => groups.flatMap((group) => group.hits.slice(0, 1)))
      .map((hit) => ({ record: toRecord(hit.id, hit.payload), score: hit.score }))
      .sort((a, b) => b.score - a.score);
  }

  async rebuildCentroids(): Promise<number> {
    await this.store.callOr(`removing the centroids of ${this.name}`, undefined, (c) =>
      c.delete(this.name, { wait: true, filter: { must: [IS_CENTROID] } }),
    );
    const items = new Set<string>();
    for (let after: string | undefined; ;) {
      const page = await this.scroll({ after, limit: 1000 });
      for (const { record } of page.points) items.add(record.item_id);
      if (!page.next) break;
      after = page.next;
    }
    await this.refreshCentroids(items);
    const counted = await this.store.call(`counting the centroids of ${this.name}`, (c) =>
      c.count(this.name, { filter: { must: [IS_CENTROID] }, exact: true }),
    );
    return counted.count;
  }

  async updateItem(itemId: string, patch: Partial<Omit<ItemFields, 'item_id'>>): Promise<number> {
    const payload = Object.fromEntries(
      Object.entries(patch).filter(([key]) => key !== 'item_id' && key in ItemFields.properties),
    );
    if (Object.keys(payload).length === 0) return 0;
    await this.store.call(`updating item ${JSON.stringify(itemId)} in ${this.name}`, (c) =>
      c.setPayload(this.name, { payload, filter: itemFilter(itemId), wait: true }),
    );
    const counted = await this.store.call(`counting the images of ${JSON.stringify(itemId)}`, (c) =>
      c.count(this.name, { filter: itemImagesFilter(itemId), exact: true }),
    );
    return counted.count;
  }

  async deleteImages(imageIds: string[]): Promise<void> {
    if (imageIds.length === 0) return;
    const found = await this.store.callOr(`reading ${imageIds.length} image(s) of ${this.name}`, [], (c) =>
      c.retrieve(this.name, { ids: imageIds, with_payload: ['item_id'], with_vector: false }),
    );
    await this.store.callOr(`deleting ${imageIds.length} image(s) from ${this.name}`, undefined, (c) =>
      c.delete(this.name, { wait: true, points: imageIds }),
    );
    await this.refreshCentroids(found.map((point) => String((point.payload as { item_id?: unknown })?.item_id)));
  }

  async deleteItem(itemId: string): Promise<void> {
    await this.store.callOr(`deleting item ${JSON.stringify(itemId)} from ${this.name}`, undefined, (c) =>
      c.delete(this.name, { wait: true, filter: itemFilter(itemId) }),
    );
  }

  async deleteAll(): Promise<void> {
    // An empty filter matches every point; the collection, its index and its aliases stay.
    await this.store.callOr(`deleting all points of ${this.name}`, undefined, (c) =>
      c.delete(this.name, { wait: true, filter: {} }),
    );
  }

  async scroll(options: { after?: string; limit: number; withVectors?: boolean }): Promise<ScrollPage> {
    const { after, limit } = options;
    if (limit <= 0) return { points: [] };
    // Qdrant's offset is inclusive: start at `after` and skip it when it is still there.
    const page = await this.store.callOr(`scrolling ${this.name}`, undefined, (c) =>
      c.scroll(this.name, {
        filter: imagesOnly,
        offset: after,
        limit: limit + 1,
        with_payload: true,
        with_vector: options.withVectors === true,
      }),
    );
    if (!page) return { points: [] };
    const skip = after === undefined ? undefined : after.toLowerCase();
    const rest = page.points.filter((p) => String(p.id) !== skip);
    const points = rest.slice(0, limit).map((p) => {
      const vector = options.withVectors ? toVector(p.vector) : undefined;
      return { record: toRecord(p.id, p.payload), ...(vector ? { vector } : {}) };
    });
    const more = rest.length > limit || (page.next_page_offset !== null && page.next_page_offset !== undefined);
    return { points, next: more && points.length > 0 ? points[points.length - 1].record.image_id : undefined };
  }

  async count(): Promise<number> {
    const result = await this.store.callOr(`counting points of ${this.name}`, undefined, (c) =>
      c.count(this.name, { filter: imagesOnly, exact: true }),
    );
    return result?.count ?? 0;
  }

  async countItems(): Promise<number> {
    const result = await this.store.callOr(`counting the items of ${this.name}`, undefined, (c) =>
      c.count(this.name, { filter: itemMarkers, exact: true }),
    );
    return result?.count ?? 0;
  }
}

export function createQdrantStore(options: QdrantStoreOptions): QdrantStore {
  return new QdrantStore(options);
}
