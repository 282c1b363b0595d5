// The use cases the routes call: ingest, add image, search, read, delete, wipe, embed. The only place
// that touches both the image files and the store, and keeps them consistent: a file is staged before
// its point is written, moved into place after, and removed again when the write fails.
import { randomUUID } from 'node:crypto';
import type { Embedder } from '../embedding/embedder.js';
import type { ModelRegistry } from '../embedding/registry.js';
import { ServiceError } from '../errors.js';
import { imageFormat } from '../images/preprocess.js';
import {
  collectionNameFor,
  type Collection,
  type CollectionInfo,
  type ImageRecord,
  type SearchOptions,
  type VectorStore,
} from '../store/port.js';
import { sha256Hex, type ImageFiles } from './image-files.js';
import { KeyedLock, SharedExclusiveLock, type ItemLock } from './locks.js';
import { finishInterrupted } from './recovery.js';
import { CentroidSamples } from './centroid-samples.js';
import { findDuplicates } from './duplicates.js';
import type { Duplicate } from '../schemas/api.js';
import {
  answerOf,
  dot,
  NEAR_COPY_COSINE,
  rankItems,
  refineItems,
  queryStats,
  type CentroidScores,
  type SearchAnswer,
} from './scoring.js';
import type { Log } from '../log.js';
import { perceptualHash } from '../images/phash.js';
import {
  IMAGE_KINDS,
  itemFieldsOf,
  recordFrom,
  type ImageKind,
  type ItemFields,
  type ItemUpdate,
} from '../schemas/records.js';
import { l2Normalize } from '../embedding/model.js';
import { makeThumbnail, thumbnailVariant, type ThumbnailSize } from '../images/thumbnail.js';
import { isNotFound } from '../lib/files.js';
import { timedCollection, type StoreObserver } from '../store/timed.js';

export type { Log as Logger } from '../log.js';

export interface CatalogOptions {
  store: VectorStore;
  files: ImageFiles;
  models: ModelRegistry;
  /** The name the API addresses (QDRANT_COLLECTION): an alias to the live collection. */
  alias: string;
  log: Log;
  /** How long a resolved alias is trusted before it is looked up again (default 1000 ms). */
  liveRefreshMs?: number;
  /** Searches also embed this central fraction of each side of the photo (1 = only the whole; default 0.8). */
  searchZoom?: number;
  /** Serializes writes per item; a cross-process lock when other processes write too (default in-process). */
  itemLock?: ItemLock;
  /** Load the search index at open (default true; a process that only writes, such as `ops sync`, skips it). */
  warmIndex?: boolean;
}

export class StartupError extends Error {
  override name = 'StartupError';
}

/** A stored image and whether this call stored it (false: the same bytes were there already). */
export interface Stored {
  record: ImageRecord;
  created: boolean;
  /** Other items' copies of this image (see duplicates.ts). */
  duplicates?: Duplicate[];
}

export interface SearchRequest {
  limit: number;
  filter?: SearchOptions['filter'];
  includeDisabled?: boolean;
  /** Rows below this confidence are dropped. */
  minConfidence: number;
}

/** A new item's fields: the id, and any others (absent ones take their defaults). */
export type NewItem = Pick<ItemFields, 'item_id'> & Partial<ItemFields>;

/** How a new image is described besides its item: its kind and where it came from. */
export interface ImageInput {
  kind?: ImageKind;
  source?: ImageRecord['source'];
  source_ref?: string | null;
}

interface Live {
  collection: Collection;
  info: CollectionInfo;
  embedder: Embedder;
  at: number;
}

/** Leading items (at least) that a search rescores with their images. */
const REFINED = 10;
/** Items taken from each kind's centroid index (at least): the ranking rarely reaches beyond the first few. */
const CANDIDATES_PER_KIND = 24;

const MIGRATE_HINT = 'npm run ops -- migrate --to-model <path/to/model.onnx>';

export class Catalog {
  private readonly locks: ItemLock;
  /** Writes hold it shared; a wipe holds it alone. */
  private readonly writes = new SharedExclusiveLock();
  private readonly samples = new CentroidSamples();
  private live?: Live;
  private refreshing?: Promise<Live>;

  private storeObserver?: StoreObserver;

  private constructor(private readonly options: CatalogOptions) {
    this.locks = options.itemLock ?? new KeyedLock();
  }

  /** Store calls made from now on report their durations here (/metrics). */
  observeStore(observer: StoreObserver): void {
    this.storeObserver = observer;
  }

  /** A collection of the store whose calls are timed for whoever observes the store. */
  private collection(name: string): Collection {
    return timedCollection(this.options.store.collection(name), () => this.storeObserver);
  }

  /**
   * Binds to the live collection (creating `<alias>_<model>_<dim>` and the alias on first start),
   * refuses to start when its vectors were made by another model, and finishes or removes any image
   * left half-ingested by a crash.
   */
  static async open(options: CatalogOptions): Promise<Catalog> {
    const catalog = new Catalog(options);
    const embedder = await options.models.default();
    const { name, dim, sha256 } = embedder.manifest;
    const { store, alias, log } = options;
    let info = await store.collection(alias).info();
    if (!info) {
      const collection = collectionNameFor(alias, name, dim);
      const existing = (await store.listCollections()).find((c) => c.name === collection);
      if (!existing) await store.createCollection(collection, dim, name, sha256);
      await store.setAlias(alias, collection);
      log.info(`Created collection ${collection} (${dim}-d, model ${name}) behind alias ${alias}.`);
      info = (await store.collection(alias).info())!;
    }
    if (info.dim !== dim) {
      throw new StartupError(
        `Collection ${info.name} (addressed as ${alias}) holds ${info.dim}-d vectors, but the model ${name} ` +
          `(${options.models.defaultPath}) makes ${dim}-d vectors. ` +
          `Nothing was changed. Re-embed the stored images with: ${MIGRATE_HINT}, or point MODEL_PATH at the ` +
          `model the collection was built with.`,
      );
    }
    if (info.model && info.model !== name) {
      throw new StartupError(
        `Collection ${info.name} (addressed as ${alias}) was built with model ${info.model}, but MODEL_PATH is ` +
          `model ${name}; ` +
          `their vectors are not comparable. Nothing was changed. Re-embed with: ${MIGRATE_HINT}, or set ` +
          `MODEL_PATH to ${info.model}.onnx.`,
      );
    }
    if (info.modelSha256 && info.modelSha256 !== sha256) {
      throw new StartupError(
        `Collection ${info.name} (addressed as ${alias}) was built with model ${name} whose file has sha256 ` +
          `${info.modelSha256}, but MODEL_PATH (${options.models.defaultPath}) has sha256 ${sha256}: the same ` +
          `model with other weights (e.g. random instead of pretrained), so their vectors are not comparable. ` +
          `Nothing was changed. Put the original file back at MODEL_PATH, or give the new export another name ` +
          `(its sidecar's "name") and re-embed with: ${MIGRATE_HINT}.`,
      );
    }
    // Made before identities were recorded: accepted (refusing would stop every upgraded deployment), but
    // said once; a migration records the identity of the model it re-embeds with.
    if (!info.modelSha256) {
      log.warn(
        `Collection ${info.name} records no model identity (made by an older release); serving it with ` +
          `${name} sha256 ${sha256}, assumed to be the weights that made it.`,
      );
    }
    catalog.live = { collection: catalog.collection(info.name), info, embedder, at: Date.now() };
    await store.ensureSchema(info.name);
    // With a cross-process lock, recovery runs while no process is writing any item, so every staged file and
    // journaled delete it finds is left by a process that died (another one may be running right now).
    const recover = () => finishInterrupted({ collection: catalog.live!.collection, files: options.files, log });
    await (catalog.locks.all ? catalog.locks.all(recover) : recover());
    if (options.warmIndex === false) return catalog;
    // The first search should not pay for loading the index. Embedded: the work happens right here, before
    // the server listens. Qdrant: it indexes on its own and answers meanwhile; waiting is only logged.
    store
      .prepareIndex(info.name)
      .catch((error: unknown) => log.warn(`Index of ${info.name} not ready: ${(error as Error).message}`));
    return catalog;
  }

  /**
   * The live collection and the model that embeds for it. The alias is looked up again at most every
   * liveRefreshMs, so a migration's alias switch (and its model) is followed without a restart. Each
   * request then works on the resolved collection, never mixing one model's vector with another's.
   */
  private async current(): Promise<Live> {
    const refreshMs = this.options.liveRefreshMs ?? 1000;
    if (this.live && Date.now() - this.live.at < refreshMs) return this.live;
    this.refreshing ??= this.resolveLive().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async resolveLive(): Promise<Live> {
    const { store, alias, models } = this.options;
    const info = await store.collection(alias).info();
    if (!info)
      throw new ServiceError(
        'collection_missing',
        `The collection ${alias} no longer exists in the store. Restart the service to create it, or restore a backup.`,
      );
    let embedder = this.live?.embedder ?? (await models.default());
    if (info.model && info.model !== embedder.manifest.name) {
      try {
        embedder = await models.byName(info.model);
      } catch (error) {
        throw new ServiceError(
          'model_unavailable',
          `The live collection ${info.name} uses model ${info.model}, which this server cannot load ` +
            `(${(error as Error).message}).`,
        );
      }
    }
    if (info.modelSha256 && info.modelSha256 !== embedder.manifest.sha256) {
      throw new ServiceError(
        'model_mismatch',
        `The live collection ${info.name} was built with the model file of sha256 ${info.modelSha256}, but ` +
          `${embedder.manifest.name} here has sha256 ${embedder.manifest.sha256} (other weights). Put the ` +
          `original model file back, or run: ${MIGRATE_HINT}.`,
      );
    }
    if (embedder.manifest.dim !== info.dim) {
      throw new ServiceError(
        'model_mismatch',
        `The live collection ${info.name} holds ${info.dim}-d vectors but model ${embedder.manifest.name} ` +
          `makes ${embedder.manifest.dim}-d vectors. Run: ${MIGRATE_HINT}.`,
      );
    }
    this.live = { collection: this.collection(info.name), info, embedder, at: Date.now() };
    return this.live;
  }

  /** Throws a 503 ServiceError (or the store's unavailability) when not ready to serve. */
  async ready(): Promise<{ collection: string; model: string; model_sha256: string; dim: number }> {
    await this.options.store.ping();
    const live = await this.current();
    const { name, sha256 } = live.embedder.manifest;
    return { collection: live.info.name, model: name, model_sha256: sha256, dim: live.info.dim };
  }

  /** What /metrics reports of the live collection: ready()'s answer and its numbers of images and items. */
  async stats(): Promise<Awaited<ReturnType<Catalog['ready']>> & { images: number; items: number }> {
    const live = await this.current();
    const [ready, images, items] = await Promise.all([
      this.ready(),
      live.collection.count(),
      live.collection.countItems(),
    ]);
    return { ...ready, images, items };
  }

  async embed(bytes: Buffer): Promise<{ model: string; dim: number; vector: Float32Array }> {
    const { embedder } = await this.current();
    return { model: embedder.manifest.name, dim: embedder.manifest.dim, vector: await embedder.embed(bytes) };
  }

  /**
   * The items a photo shows, best first, each with its confidence, and the verdict on the first. Items are
   * scored from all their images by kind (scoring.ts); candidates come from each kind's centroid index.
   */
  async search(bytes: Buffer, request: SearchRequest): Promise<SearchAnswer> {
    const live = await this.current();
    const { collection, embedder } = live;
    const zoom = this.options.searchZoom ?? 0.8;
    // Two views of the photo, embedded side by side: the whole, and its centre (where the product usually is).
    // The centre view only takes a worker that is free right now: under load a search uses the whole alone.
    const wholeView = embedder.embed(bytes);
    const centreView = zoom < 1 ? embedder.tryEmbed(bytes, zoom) : undefined;
    const [whole, centre] = await Promise.all([wholeView, centreView]);
    const query = centre ? l2Normalize(whole.map((x, i) => x + centre[i]!)) : whole;
    const options = { filter: request.filter, includeDisabled: request.includeDisabled };
    const samples = await this.samples.of(collection);
    // Kinds the catalog has no images of (often `photo`) cost nothing.
    const kinds = IMAGE_KINDS.filter((kind) => samples[kind].length > 0);
    const stats = queryStats(query, samples);
    const wanted = Math.max(CANDIDATES_PER_KIND, request.limit * 4);
    const candidates = await Promise.all(kinds.map((kind) => collection.searchCentroids(query, kind, wanted, options)));
    const scores: CentroidScores = new Map();
    candidates.forEach((list, i) => {
      for (const { item_id, score } of list) scores.set(item_id, { ...scores.get(item_id), [kinds[i]!]: score });
    });
    // The query's own picture (a stored image sent again) identifies its item whatever the item's other
    // centroids say: a kind with one image in the item has that image as its centroid.
    const nearCopy = NEAR_COPY_COSINE * dot(query, whole);
    const copies = candidates
      .flat()
      .filter((match) => match.score >= nearCopy)
      .map((match) => match.item_id);
    if (scores.size === 0) return { match: 'none', results: [] };
    // An item found through one kind may have images of another: that centroid counts too (kinds without
    // statistics of their own do not count for items that have another, see scoring.ts).
    const counted = kinds.filter((kind) => stats.kinds[kind] !== undefined);
    const incomplete = [...scores].filter(([, byKind]) => counted.some((kind) => byKind[kind] === undefined));
    if (incomplete.length > 0) {
      for (const centroid of await collection.centroidsOf(incomplete.map(([itemId]) => itemId))) {
        const byKind = scores.get(centroid.item_id)!;
        if (byKind[centroid.kind] === undefined) byKind[centroid.kind] = dot(query, centroid.vector);
      }
    }
    const refined = Math.max(2 * request.limit, REFINED);
    const leading = rankItems(scores, stats).filter((item, i) => i < refined || copies.includes(item.item_id));
    const images = await collection.scoreImages(
      query,
      leading.map((item) => item.item_id),
    );
    return answerOf(refineItems(leading, images, stats, nearCopy), request.limit, request.minConfidence);
  }

  /**
   * A new item with its first image; 409 when the item exists, unless `bytes` is one of its images
   * already (a retried ingest): then that image, with created = false.
   */
  async ingest(item: NewItem, bytes: Buffer, image: ImageInput = {}): Promise<Stored> {
    const fields = itemFieldsOf(recordFrom(item));
    const live = await this.current();
    const sha256 = sha256Hex(bytes);
    const existing = async (): Promise<Stored | undefined> => {
      const images = await live.collection.itemImages(fields.item_id);
      if (images.length === 0) return undefined;
      const same = images.find((image) => image.sha256 === sha256);
      if (same) return { record: same, created: false };
      throw new ServiceError(
        'item_exists',
        `Item ${JSON.stringify(fields.item_id)} already exists. Add images with POST /items/{item_id}/images or ` +
          `delete it first.`,
      );
    };
    const early = await existing(); // fail fast, before the costly embedding
    if (early) return this.withDuplicates(live, early, bytes, sha256);
    const vector = await live.embedder.embed(bytes);
    const stored = await this.writes.runShared(() =>
      this.locks.run(fields.item_id, async () => {
        return (await existing()) ?? { record: await this.store(live, fields, bytes, vector, image), created: true };
      }),
    );
    return this.withDuplicates(live, stored, bytes, sha256, vector);
  }

  /**
   * Another image of an existing item (its fields are kept); 404 when the item is unknown. The same bytes
   * as an image the item has give that image, with created = false.
   */
  async addImage(itemId: string, bytes: Buffer, image: ImageInput = {}): Promise<Stored> {
    const live = await this.current();
    const sha256 = sha256Hex(bytes);
    const lookup = async (): Promise<{ first: ImageRecord; same?: ImageRecord }> => {
      const images = await live.collection.itemImages(itemId);
      if (images.length === 0) throw unknownItem(itemId);
      return { first: images[0], same: images.find((image) => image.sha256 === sha256) };
    };
    const early = await lookup();
    if (early.same) return this.withDuplicates(live, { record: early.same, created: false }, bytes, sha256);
    const vector = await live.embedder.embed(bytes);
    const stored = await this.writes.runShared(() =>
      this.locks.run(itemId, async (): Promise<Stored> => {
        const { first, same } = await lookup();
        if (same) return { record: same, created: false };
        return { record: await this.store(live, itemFieldsOf(first), bytes, vector, image), created: true };
      }),
    );
    return this.withDuplicates(live, stored, bytes, sha256, vector);
  }

  /**
   * The stored image with the other items' copies of it (a warning for the caller; never a reason to
   * refuse). A re-sent image is embedded again for this, so both answers say the same. A failing check
   * is logged and reports none: the image is stored either way.
   */
  private async withDuplicates(
    live: Live,
    stored: Stored,
    bytes: Buffer,
    sha256: string,
    vector?: Float32Array,
  ): Promise<Stored> {
    const { files, log } = this.options;
    try {
      const duplicates = await findDuplicates({
        collection: live.collection,
        files,
        itemId: stored.record.item_id,
        bytes,
        sha256,
        vector: vector ?? (await live.embedder.embed(bytes)),
        warn: (message) => log.warn(message),
      });
      return { ...stored, duplicates };
    } catch (error) {
      log.warn(`Duplicate check failed for image ${stored.record.image_id}: ${(error as Error).message}`);
      return { ...stored, duplicates: [] };
    }
  }

  /** Changes item fields on every image of the item (no re-embedding); 404 when unknown. */
  async updateItem(itemId: string, patch: ItemUpdate): Promise<ImageRecord[]> {
    const { collection } = await this.current();
    return this.writes.runShared(() =>
      this.locks.run(itemId, async () => {
        if ((await collection.itemImages(itemId)).length === 0) throw unknownItem(itemId);
        await collection.updateItem(itemId, patch);
        this.options.log.info(`Updated item ${JSON.stringify(itemId)}: ${Object.keys(patch).join(', ')}.`);
        return collection.itemImages(itemId);
      }),
    );
  }

  private async store(
    live: Live,
    fields: ItemFields,
    bytes: Buffer,
    vector: Float32Array,
    image: ImageInput,
  ): Promise<ImageRecord> {
    const { files } = this.options;
    const imageId = randomUUID();
    const record = recordFrom({
      ...fields,
      ...image,
      image_id: imageId,
      phash: await perceptualHash(bytes).catch(() => null),
      file: files.relativePath(fields.item_id, imageId, await imageFormat(bytes)),
      sha256: sha256Hex(bytes),
      bytes: bytes.length,
      model: live.embedder.manifest.name,
      created_at: new Date().toISOString(),
    });
    await files.stage(imageId, bytes).catch((error: unknown) => Promise.reject(storageError(error)));
    try {
      await live.collection.upsert(record, vector);
    } catch (error) {
      await files.discard(imageId);
      throw error;
    }
    try {
      await files.commit(imageId, record.file);
      this.samples.noteWrite(live.info.name);
    } catch (error) {
      // The point must not outlive a file that never reached its place.
      await live.collection.deleteImages([imageId]);
      await files.discard(imageId);
      throw storageError(error);
    }
    return record;
  }

  /** Every stored image, a page at a time in image id order (the ERPNext sync compares them with ERPNext). */
  async *images(pageSize = 1000): AsyncGenerator<ImageRecord[]> {
    const { collection } = await this.current();
    for (let after: string | undefined; ;) {
      const page = await collection.scroll({ after, limit: pageSize });
      yield page.points.map((point) => point.record);
      if (page.next === undefined) return;
      after = page.next;
    }
  }

  async item(itemId: string): Promise<ImageRecord[]> {
    const images = await (await this.current()).collection.itemImages(itemId);
    if (images.length === 0) throw unknownItem(itemId);
    return images;
  }

  /**
   * Removes every point and file of an item; 404 when unknown. Returns the removed images. Journaled:
   * a crash part-way is finished at the next start.
   */
  async deleteItem(itemId: string): Promise<ImageRecord[]> {
    const { collection } = await this.current();
    const { files } = this.options;
    return this.writes.runShared(() =>
      this.locks.run(itemId, async () => {
        const images = await collection.itemImages(itemId);
        if (images.length === 0) throw unknownItem(itemId);
        const intent = await files
          .beginDelete({ op: 'delete-images', images: images.map(({ image_id, file }) => ({ image_id, file })) })
          .catch((error: unknown) => Promise.reject(storageError(error)));
        await collection.deleteImages(images.map((image) => image.image_id));
        this.samples.noteWrite(collection.name);
        await Promise.all(images.map((image) => files.remove(image.file)));
        await files.removeItemDirIfEmpty(itemId);
        await files.endDelete(intent);
        return images;
      }),
    );
  }

  /** Removes one image of an item (the last one takes the item with it); 404 when either is unknown. */
  async deleteImage(itemId: string, imageId: string): Promise<ImageRecord> {
    const { collection } = await this.current();
    const { files } = this.options;
    return this.writes.runShared(() =>
      this.locks.run(itemId, async () => {
        const image = (await collection.itemImages(itemId)).find((candidate) => candidate.image_id === imageId);
        if (!image) {
          throw new ServiceError('image_not_found', `Item ${JSON.stringify(itemId)} has no image ${imageId}.`);
        }
        const intent = await files
          .beginDelete({ op: 'delete-images', images: [{ image_id: image.image_id, file: image.file }] })
          .catch((error: unknown) => Promise.reject(storageError(error)));
        await collection.deleteImages([image.image_id]);
        this.samples.noteWrite(collection.name);
        await files.remove(image.file);
        await files.removeItemDirIfEmpty(itemId);
        await files.endDelete(intent);
        return image;
      }),
    );
  }

  /** One stored image by id (for thumbnails and the original); 404 when unknown. */
  async image(imageId: string): Promise<ImageRecord> {
    const image = await (await this.current()).collection.image(imageId);
    if (!image) throw new ServiceError('image_not_found', `No image ${imageId}.`);
    return image;
  }

  /**
   * Removes all points and all stored files; returns how many points there were. Waits for writes in
   * progress and holds new ones until it is done; journaled like deleteItem.
   */
  async deleteAll(): Promise<number> {
    const { collection } = await this.current();
    const { files } = this.options;
    return this.writes.runExclusive(async () => {
      const count = await collection.count();
      const intent = await files
        .beginDelete({ op: 'wipe' })
        .catch((error: unknown) => Promise.reject(storageError(error)));
      await collection.deleteAll();
      this.samples.noteWrite(collection.name);
      await files.wipe();
      await files.endDelete(intent);
      return count;
    });
  }

  /** Items whose id or code is exactly `text` (an id first), each as its oldest image; at most `limit`. */
  async findItems(text: string, limit: number): Promise<ImageRecord[]> {
    const { collection } = await this.current();
    const [byId, byCode] = await Promise.all([collection.itemImages(text), collection.imagesByCode(text)]);
    const first = new Map<string, ImageRecord>();
    for (const image of [...byId, ...byCode]) if (!first.has(image.item_id)) first.set(image.item_id, image);
    return [...first.values()].slice(0, limit);
  }

  /** The stored original of an image; 404 when its file is gone. */
  async original(record: ImageRecord): Promise<Buffer> {
    try {
      return await this.options.files.readStored(record);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw new ServiceError(
        'image_not_found',
        `The file of image ${record.image_id} is missing on disk. Run \`npm run ops -- check\` to find such images.`,
      );
    }
  }

  /**
   * A thumbnail of a stored image: from the disk cache, or made now and cached. It is cached under the
   * item's write lock and only while the image still exists, so a delete that ran meanwhile (and removed
   * the thumbnails it saw) never leaves one behind.
   */
  async thumbnail(record: ImageRecord, size: ThumbnailSize): Promise<Buffer> {
    const { files, log } = this.options;
    const variant = thumbnailVariant(size);
    const cached = await files.readThumbnail(record.file, variant);
    if (cached) return cached;
    const bytes = await makeThumbnail(await this.original(record), size);
    const { collection } = await this.current();
    await this.writes
      .runShared(() =>
        this.locks.run(record.item_id, async () => {
          if (await collection.image(record.image_id)) await files.writeThumbnail(record.file, variant, bytes);
        }),
      )
      // The cache is an optimisation: a full disk must not cost the caller the thumbnail.
      .catch((error: unknown) => log.warn(`Thumbnail of ${record.image_id} not cached: ${(error as Error).message}`));
    return bytes;
  }
}

/** A full disk (or quota) under IMAGE_STORAGE_DIR becomes 507 with what to do; other failures pass. */
function storageError(error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ServiceError(
      'insufficient_storage',
      'The disk that holds the images (IMAGE_STORAGE_DIR) is full; nothing was stored. Free space and retry.',
    );
  }
  return error as Error;
}

const unknownItem = (itemId: string) =>
  new ServiceError('item_not_found', `No item ${JSON.stringify(itemId)}. Create it with POST /ingest.`);
