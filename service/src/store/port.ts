// The vector-store port. One point per stored image; the catalog is the only caller that also touches
// image files. Two adapters implement it: embedded (SQLite + HNSW on local disk) and qdrant.
//
// Names: a collection holds points of one width and one model. An alias is a second name that points
// at a collection and can be moved atomically; the API always addresses its data by QDRANT_COLLECTION,
// which is an alias (created on first start) so that a model migration can switch it in one step.
import type { ImageKind, ImageRecord, ItemFields } from '../schemas/records.js';

export type { ImageRecord };

/** The best-matching image of one item, with its cosine similarity to the query (1 = identical). */
export interface ItemMatch {
  record: ImageRecord;
  score: number;
}

/** An item's centroid of one image kind: the normalised mean of the (unit) vectors of those images. */
export interface KindCentroid {
  item_id: string;
  kind: ImageKind;
  /** Images it averages. */
  count: number;
  vector: Float32Array;
}

/** An item whose centroid of some kind is near a query, with that cosine. */
export interface CentroidMatch {
  item_id: string;
  score: number;
}

/** Which items a search may return: any of the listed values per field; disabled ones only if asked. */
export interface SearchOptions {
  filter?: { item_group?: string[]; brand?: string[] };
  includeDisabled?: boolean;
}

export interface CollectionInfo {
  /** The real collection name (an alias is resolved). */
  name: string;
  dim: number;
  /** Model recorded when the collection was created; null for collections made by other tools. */
  model: string | null;
  /**
   * SHA-256 of the .onnx that made its vectors (the model's identity by its weights); null for collections
   * made before identities were recorded, or by other tools.
   */
  modelSha256: string | null;
  points: number;
}

export interface ScrollPage {
  points: Array<{ record: ImageRecord; vector?: Float32Array }>;
  /** Pass as `after` to get the next page; undefined on the last page. Points come in image_id order. */
  next?: string;
}

/** Operations on the points of one collection, addressed by collection or alias name. */
export interface Collection {
  readonly name: string;
  /** Resolves the name (alias → collection); undefined when nothing by that name exists. */
  info(): Promise<CollectionInfo | undefined>;
  /** Inserts or replaces the point `record.image_id`. Durable and visible to reads when it resolves. */
  upsert(record: ImageRecord, vector: Float32Array): Promise<void>;
  /** Several points in one write (bulk work such as migration). */
  upsertMany(points: Array<{ record: ImageRecord; vector: Float32Array }>): Promise<void>;
  /** One point by image id; undefined when absent. */
  image(image_id: string): Promise<ImageRecord | undefined>;
  /** All images of one item, oldest first; [] when the item is unknown. */
  itemImages(item_id: string): Promise<ImageRecord[]>;
  /** All images whose item_code is `code` (of any item), oldest first; [] when there are none. */
  imagesByCode(code: string): Promise<ImageRecord[]>;
  /**
   * Nearest items to `vector`: one row per item (its best image), best first, at most `limit`; only items
   * the filter keeps (exactly: never an item outside it, never a miss among those inside it).
   */
  searchItems(vector: Float32Array, limit: number, options?: SearchOptions): Promise<ItemMatch[]>;
  /**
   * Items whose centroid of `kind` is nearest to `vector`, best first (candidates for item-level scoring;
   * filtered like searchItems). Centroids are kept up to date by every write of the collection.
   */
  searchCentroids(
    vector: Float32Array,
    kind: ImageKind,
    limit: number,
    options?: SearchOptions,
  ): Promise<CentroidMatch[]>;
  /** Every centroid (of every kind) of these items. */
  centroidsOf(itemIds: string[]): Promise<KindCentroid[]>;
  /** Up to `limit` centroids of a kind spread over the collection (to estimate a query's similarity statistics). */
  sampleCentroids(kind: ImageKind, limit: number): Promise<Float32Array[]>;
  /** The best image of each kind of each listed item, with its exact cosine to `vector`, best first. */
  scoreImages(vector: Float32Array, itemIds: string[]): Promise<ItemMatch[]>;
  /** Recomputes every centroid from the points (a repair); returns how many there are. */
  rebuildCentroids(): Promise<number>;
  /** Sets item fields on every point of the item (vectors untouched); returns how many points changed. */
  updateItem(itemId: string, patch: Partial<Omit<ItemFields, 'item_id'>>): Promise<number>;
  deleteImages(imageIds: string[]): Promise<void>;
  deleteItem(item_id: string): Promise<void>;
  deleteAll(): Promise<void>;
  scroll(options: { after?: string; limit: number; withVectors?: boolean }): Promise<ScrollPage>;
  count(): Promise<number>;
  /** Items with at least one image (0 when the collection does not exist). */
  countItems(): Promise<number>;
}

export interface VectorStore {
  readonly kind: 'embedded' | 'qdrant';
  /** Throws StoreUnavailableError when the store does not answer. */
  ping(): Promise<void>;
  collection(name: string): Collection;
  /** Real collections with their width, model and size. */
  listCollections(): Promise<CollectionInfo[]>;
  /** alias → collection */
  listAliases(): Promise<Record<string, string>>;
  /** `modelSha256`: the identity of the model by its weights (ModelManifest.sha256), recorded with it. */
  createCollection(name: string, dim: number, model: string, modelSha256?: string): Promise<void>;
  deleteCollection(name: string): Promise<void>;
  /** Points `alias` at `collection` in one atomic step, creating or moving it. */
  setAlias(alias: string, collection: string): Promise<void>;
  /** Brings a collection made by an older release up to this one (Qdrant: missing payload indexes). */
  ensureSchema(collection: string): Promise<void>;
  /** Returns when searches of `collection` are fast: embedded builds and saves its HNSW index; qdrant
   * waits until the collection has finished indexing (status green). Call before switching an alias. */
  prepareIndex(collection: string): Promise<void>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** One file of a store's part of a backup (paths relative to the backup directory). */
export interface DumpFile {
  file: string;
  size: number;
  sha256: string;
  /** Qdrant: the collection and the snapshot name inside Qdrant. */
  collection?: string;
  name?: string;
}

/** A store's copy of its collections, in the making (see StoreBackup.dump). */
export interface StoreDump {
  /** The store whose points the backup holds: a copy (embedded) or the live store (Qdrant). */
  points: VectorStore;
  /** True when points deleted during the backup can still be removed from the copy. */
  editable: boolean;
  /** Finishes the copy and describes its files. */
  seal(): Promise<DumpFile[]>;
  /** Removes what an unfinished dump made. */
  abort(): Promise<void>;
}

/**
 * Backup and restore, as each adapter does them (the operator commands drive them and never touch a
 * store's own files): embedded copies its database online and replaces it offline; Qdrant takes and
 * recovers collection snapshots.
 */
export interface StoreBackup {
  readonly kind: 'embedded' | 'qdrant';
  dump(dir: string, collections: CollectionInfo[]): Promise<StoreDump>;
  /** Throws StoreBackupError when a restore cannot run now (embedded: something has the database open). */
  assertRestorable(): Promise<void>;
  /** Puts a verified dump back; `previous` says where replaced data was kept, if anywhere. */
  restore(dir: string, files: DumpFile[], aliases: Record<string, string>): Promise<{ previous?: string }>;
  /** Forgets what a dump left inside the store (Qdrant's snapshots), when its backup is pruned or failed. */
  forget(files: DumpFile[]): Promise<void>;
}

/** A backup or restore step of a store adapter failed; the message says why and what to do. */
export class StoreBackupError extends Error {
  override name = 'StoreBackupError';
}

/** The store's disk is full: nothing was written; it works again once space is freed. */
export class StoreFullError extends Error {
  override name = 'StoreFullError';
}

/** Name of the collection made for a model, e.g. items_efficientnet_b0_1280. */
export function collectionNameFor(base: string, model: string, dim: number): string {
  const safeModel = model
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return `${base}_${safeModel}_${dim}`;
}
