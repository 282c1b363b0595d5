// The embedded vector store: SQLite (better-sqlite3, WAL, synchronous=FULL) is the durable truth for
// points, collections and aliases; an in-memory HNSW index per collection (usearch, f16) answers
// nearest-neighbour queries in a few milliseconds at 100k × 1280, where exact scans take 25-60 ms.
//
// The index is derived data. Every write appends to a `changes` log in the same transaction as the
// point, and each process applies the log before it searches, so several processes (the API and an
// operations command) stay coherent. The index is checkpointed to disk (temp file + rename) now and
// then; after a restart or kill -9 a process loads the newest checkpoint and replays the log after it,
// and only rebuilds from the points when no usable checkpoint exists.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import usearch from 'usearch';
import { l2Normalize } from '../embedding/model.js';
import {
  StoreUnavailableError,
  type Collection,
  type CollectionInfo,
  type ImageRecord,
  type ItemMatch,
  type ScrollPage,
  type VectorStore,
} from './port.js';

const { Index, MetricKind, ScalarKind } = usearch;
type HnswIndex = InstanceType<typeof Index>;

export interface EmbeddedStoreOptions {
  dataDir: string;
  /** Checkpoint the index after this many logged changes (default 2000). */
  checkpointEvery?: number;
  log?: (message: string) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS collections (
  name TEXT PRIMARY KEY, dim INTEGER NOT NULL, model TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (
  alias TEXT PRIMARY KEY, collection TEXT NOT NULL REFERENCES collections(name));
CREATE TABLE IF NOT EXISTS points (
  key INTEGER PRIMARY KEY AUTOINCREMENT,
  collection TEXT NOT NULL REFERENCES collections(name),
  image_id TEXT NOT NULL, item_id TEXT NOT NULL, item_name TEXT, item_code TEXT,
  file TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, model TEXT NOT NULL,
  created_at TEXT NOT NULL, vector BLOB NOT NULL,
  UNIQUE (collection, image_id));
CREATE INDEX IF NOT EXISTS points_by_item ON points (collection, item_id, created_at);
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, key INTEGER NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('add', 'del')));
CREATE INDEX IF NOT EXISTS changes_by_collection ON changes (collection, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
  collection TEXT PRIMARY KEY, seq INTEGER NOT NULL, file TEXT NOT NULL);
`;

/** Beyond this many logged changes a process rebuilds its index in bulk instead of replaying them. */
const REPLAY_LIMIT = 20_000;
const HNSW = { connectivity: 16, expansion_add: 128, expansion_search: 512, multi: false };

interface PointRow {
  key: number;
  image_id: string;
  item_id: string;
  item_name: string | null;
  item_code: string | null;
  file: string;
  sha256: string;
  bytes: number;
  model: string;
  created_at: string;
  vector?: Buffer;
}

const RECORD_COLUMNS = 'key, image_id, item_id, item_name, item_code, file, sha256, bytes, model, created_at';

function toRecord(row: PointRow): ImageRecord {
  return {
    imageId: row.image_id,
    itemId: row.item_id,
    itemName: row.item_name,
    itemCode: row.item_code,
    file: row.file,
    sha256: row.sha256,
    bytes: row.bytes,
    model: row.model,
    createdAt: row.created_at,
  };
}

/** SQLite BLOBs are not guaranteed 4-byte aligned, so copy before viewing them as float32. */
const toVector = (blob: Buffer) => new Float32Array(new Uint8Array(blob).buffer);
const toBlob = (vector: Float32Array) => Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);

/** SQLite failures that mean "the store cannot serve now" (disk full, I/O error, locked too long, closed),
 * as opposed to programming errors. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB)/;

function asUnavailable(error: unknown): unknown {
  const code = (error as { code?: string }).code ?? '';
  if (UNAVAILABLE.test(code) || /database connection is not open/.test((error as Error).message)) {
    return new StoreUnavailableError(
      `The embedded database cannot be used: ${(error as Error).message}. Check the disk under DATA_DIR.`,
    );
  }
  return error;
}

/** Every public method is async: map its failures in one place rather than in each body. */
function guarded<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(object, args);
        return result instanceof Promise
          ? result.catch((error: unknown) => Promise.reject(asUnavailable(error) as Error))
          : result;
      };
    },
  });
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

interface LoadedIndex {
  index: HnswIndex;
  dim: number;
  appliedSeq: number;
}

export class EmbeddedStore implements VectorStore {
  readonly kind = 'embedded' as const;
  private readonly db: Database.Database;
  private readonly indexDir: string;
  private readonly indexes = new Map<string, LoadedIndex>();
  private readonly checkpointEvery: number;
  private readonly log: (message: string) => void;

  constructor(options: EmbeddedStoreOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.indexDir = path.join(options.dataDir, 'index');
    mkdirSync(this.indexDir, { recursive: true });
    this.checkpointEvery = options.checkpointEvery ?? 2000;
    this.log = options.log ?? (() => {});
    this.db = new Database(path.join(options.dataDir, 'store.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // FULL: a write the API acknowledged survives power loss, not only a killed process.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(SCHEMA);
  }

  /** Path of the SQLite file, for online backups. */
  get databasePath(): string {
    return this.db.name;
  }

  /** Consistent online copy of the database (SQLite backup API), safe while others write. */
  async backupTo(file: string): Promise<void> {
    await this.db.backup(file);
  }

  async ping(): Promise<void> {
    try {
      this.db.prepare('SELECT 1').get();
    } catch (error) {
      throw new StoreUnavailableError(
        `The embedded database at ${this.db.name} does not answer: ${(error as Error).message}`,
      );
    }
  }

  collection(name: string): Collection {
    return guarded(new EmbeddedCollection(this, name));
  }

  async listCollections(): Promise<CollectionInfo[]> {
    const rows = this.db
      .prepare(
        `SELECT c.name, c.dim, c.model, (SELECT COUNT(*) FROM points p WHERE p.collection = c.name) AS points
         FROM collections c ORDER BY c.name`,
      )
      .all() as CollectionInfo[];
    return rows;
  }

  async listAliases(): Promise<Record<string, string>> {
    const rows = this.db.prepare('SELECT alias, collection FROM aliases ORDER BY alias').all() as Array<{
      alias: string;
      collection: string;
    }>;
    return Object.fromEntries(rows.map((row) => [row.alias, row.collection]));
  }

  async createCollection(name: string, dim: number, model: string): Promise<void> {
    this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM aliases WHERE alias = ?').get(name)) {
        throw new Error(`Cannot create collection ${name}: an alias with that name exists.`);
      }
      if (this.db.prepare('SELECT 1 FROM collections WHERE name = ?').get(name)) {
        throw new Error(`Collection ${name} already exists.`);
      }
      this.db
        .prepare('INSERT INTO collections (name, dim, model, created_at) VALUES (?, ?, ?, ?)')
        .run(name, dim, model, new Date().toISOString());
    })();
  }

  async deleteCollection(name: string): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM aliases WHERE collection = ?').run(name);
      this.db.prepare('DELETE FROM points WHERE collection = ?').run(name);
      this.db.prepare('DELETE FROM changes WHERE collection = ?').run(name);
      this.db.prepare('DELETE FROM checkpoints WHERE collection = ?').run(name);
      this.db.prepare('DELETE FROM collections WHERE name = ?').run(name);
    })();
    this.indexes.delete(name);
    this.removeCheckpointFiles(name, Number.POSITIVE_INFINITY);
  }

  async setAlias(alias: string, collection: string): Promise<void> {
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM collections WHERE name = ?').get(collection)) {
        throw new Error(`Cannot point alias ${alias} at ${collection}: no such collection.`);
      }
      if (this.db.prepare('SELECT 1 FROM collections WHERE name = ?').get(alias)) {
        throw new Error(`Cannot create alias ${alias}: a collection with that name exists.`);
      }
      this.db
        .prepare(
          'INSERT INTO aliases (alias, collection) VALUES (?, ?) ON CONFLICT (alias) DO UPDATE SET collection ' +
            '= excluded.collection',
        )
        .run(alias, collection);
    })();
  }

  async close(): Promise<void> {
    for (const name of this.indexes.keys()) this.checkpoint(name);
    this.indexes.clear();
    this.db.close();
  }

  // ---- used by EmbeddedCollection ----

  resolve(name: string): { name: string; dim: number; model: string | null } | undefined {
    const row = this.db
      .prepare(
        `SELECT c.name, c.dim, c.model FROM collections c
         WHERE c.name = COALESCE((SELECT collection FROM aliases WHERE alias = ?), ?)`,
      )
      .get(name, name) as { name: string; dim: number; model: string | null } | undefined;
    return row;
  }

  require(name: string): { name: string; dim: number } {
    const resolved = this.resolve(name);
    if (!resolved) throw new Error(`Collection or alias ${name} does not exist in the embedded store.`);
    return resolved;
  }

  get sql(): Database.Database {
    return this.db;
  }

  /** Applies a write and its change-log entries in one transaction, then maybe checkpoints. */
  write(collection: string, change: () => { added: number[]; removed: number[] }): void {
    const logChange = this.db.prepare('INSERT INTO changes (collection, key, op) VALUES (?, ?, ?)');
    this.db
      .transaction(() => {
        const { added, removed } = change();
        for (const key of removed) logChange.run(collection, key, 'del');
        for (const key of added) logChange.run(collection, key, 'add');
      })
      .immediate(); // take the write lock up front: deferred upgrades can fail at once under contention
    const checkpoint = this.db.prepare('SELECT seq FROM checkpoints WHERE collection = ?').get(collection) as
      { seq: number } | undefined;
    if (this.backlog(collection, checkpoint?.seq ?? 0) >= this.checkpointEvery) this.checkpoint(collection);
  }

  /** The collection's HNSW index, brought up to date with the change log. */
  index(collection: string, dim: number): HnswIndex {
    const checkpoint = this.db.prepare('SELECT seq, file FROM checkpoints WHERE collection = ?').get(collection) as
      { seq: number; file: string } | undefined;
    let loaded = this.indexes.get(collection);
    // Log entries up to a checkpoint may be pruned: a process that is behind starts again from the checkpoint.
    if (loaded && (loaded.dim !== dim || (checkpoint && loaded.appliedSeq < checkpoint.seq))) loaded = undefined;
    const replayFrom = loaded?.appliedSeq ?? checkpoint?.seq;
    // No checkpoint, or a long backlog (bulk writes by another process): building in bulk beats replaying.
    if (replayFrom === undefined || this.backlog(collection, replayFrom) > REPLAY_LIMIT) {
      loaded = this.rebuild(collection, dim);
    } else if (!loaded) {
      loaded = this.load(collection, dim, checkpoint!);
    }
    this.indexes.set(collection, loaded);
    const changes = this.db
      .prepare('SELECT seq, key, op FROM changes WHERE collection = ? AND seq > ? ORDER BY seq')
      .all(collection, loaded.appliedSeq) as Array<{ seq: number; key: number; op: 'add' | 'del' }>;
    if (changes.length > 0) {
      const vectorOf = this.db.prepare('SELECT vector FROM points WHERE key = ?');
      for (const { seq, key, op } of changes) {
        const id = BigInt(key);
        if (op === 'del') {
          if (loaded.index.contains(id)) loaded.index.remove(id);
        } else if (!loaded.index.contains(id)) {
          const row = vectorOf.get(key) as { vector: Buffer } | undefined;
          if (row) loaded.index.add(id, toVector(row.vector));
        }
        loaded.appliedSeq = seq;
      }
    }
    return loaded.index;
  }

  private backlog(collection: string, afterSeq: number): number {
    return (
      this.db
        .prepare('SELECT COUNT(*) AS n FROM changes WHERE collection = ? AND seq > ?')
        .get(collection, afterSeq) as { n: number }
    ).n;
  }

  private newIndex(dim: number): HnswIndex {
    return new Index({ dimensions: dim, metric: MetricKind.Cos, quantization: ScalarKind.F16, ...HNSW });
  }

  private load(collection: string, dim: number, checkpoint: { seq: number; file: string }): LoadedIndex {
    const index = this.newIndex(dim);
    try {
      index.load(path.join(this.indexDir, checkpoint.file));
      return { index, dim, appliedSeq: checkpoint.seq };
    } catch (error) {
      this.log(
        `Index checkpoint ${checkpoint.file} is unreadable (${(error as Error).message}); rebuilding from the ` +
          `database.`,
      );
      return this.rebuild(collection, dim);
    }
  }

  private rebuild(collection: string, dim: number): LoadedIndex {
    const index = this.newIndex(dim);
    // One read transaction: the points and the log position are a consistent snapshot.
    const { seq, total } = this.db.transaction(() => {
      // sqlite_sequence holds the last seq ever handed out, even when the log has been pruned empty.
      const last = (this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").get() as
        { seq: number } | undefined) ?? { seq: 0 };
      let total = 0;
      const batch: Array<{ key: number; vector: Buffer }> = [];
      const flush = () => {
        if (batch.length === 0) return;
        const keys = new BigUint64Array(batch.map((row) => BigInt(row.key)));
        const flat = new Float32Array(batch.length * dim);
        batch.forEach((row, i) => flat.set(toVector(row.vector), i * dim));
        index.add(keys, flat, 0);
        total += batch.length;
        batch.length = 0;
      };
      for (const row of this.db
        .prepare('SELECT key, vector FROM points WHERE collection = ?')
        .iterate(collection) as Iterable<{ key: number; vector: Buffer }>) {
        batch.push(row);
        if (batch.length === 4096) flush();
      }
      flush();
      return { seq: last.seq, total };
    })();
    if (total > 0) this.log(`Rebuilt the vector index of ${collection} from ${total} points.`);
    return { index, dim, appliedSeq: seq };
  }

  /** Loads (building it if needed) and saves the index of a collection, so the next process to open
   * it starts from the file instead of rebuilding. */
  async prepareIndex(collection: string): Promise<void> {
    this.checkpoint(this.require(collection).name);
  }

  /** Saves the index atomically, records it, prunes the log and older checkpoint files. */
  checkpoint(collection: string): void {
    const resolved = this.db.open ? this.resolve(collection) : undefined;
    if (!resolved) return;
    this.index(collection, resolved.dim); // load or catch up first
    const loaded = this.indexes.get(collection)!;
    const seq = loaded.appliedSeq;
    const current = this.db.prepare('SELECT seq FROM checkpoints WHERE collection = ?').get(collection) as
      { seq: number } | undefined;
    if (current && current.seq >= seq) return;
    const file = `${encodeURIComponent(collection)}.${seq}.usearch`;
    const target = path.join(this.indexDir, file);
    loaded.index.save(`${target}.tmp`);
    const fd = openSync(`${target}.tmp`, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(`${target}.tmp`, target);
    const updated = this.db
      .transaction((): boolean => {
        const latest = this.db.prepare('SELECT seq FROM checkpoints WHERE collection = ?').get(collection) as
          { seq: number } | undefined;
        if (latest && latest.seq >= seq) return false;
        this.db
          .prepare(
            'INSERT INTO checkpoints (collection, seq, file) VALUES (?, ?, ?) ON CONFLICT (collection) DO ' +
              'UPDATE SET seq = excluded.seq, file = excluded.file',
          )
          .run(collection, seq, file);
        this.db.prepare('DELETE FROM changes WHERE collection = ? AND seq <= ?').run(collection, seq);
        return true;
      })
      .immediate();
    if (!updated) rmSync(target, { force: true });
    this.removeCheckpointFiles(collection, updated ? seq : Number.NEGATIVE_INFINITY);
  }

  private removeCheckpointFiles(collection: string, belowSeq: number): void {
    const prefix = `${encodeURIComponent(collection)}.`;
    for (const file of readdirSync(this.indexDir)) {
      if (!file.startsWith(prefix) || !file.endsWith('.usearch')) continue;
      const seq = Number(file.slice(prefix.length, -'.usearch'.length));
      if (Number.isFinite(seq) && seq < belowSeq) rmSync(path.join(this.indexDir, file), { force: true });
    }
  }
}

class EmbeddedCollection implements Collection {
  constructor(
    private readonly store: EmbeddedStore,
    readonly name: string,
  ) {}

  private get db() {
    return this.store.sql;
  }

  async info(): Promise<CollectionInfo | undefined> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return undefined;
    const { n } = this.db.prepare('SELECT COUNT(*) AS n FROM points WHERE collection = ?').get(resolved.name) as {
      n: number;
    };
    return { ...resolved, points: n };
  }

  async upsert(record: ImageRecord, vector: Float32Array): Promise<void> {
    await this.upsertMany([{ record, vector }]);
  }

  async upsertMany(points: Array<{ record: ImageRecord; vector: Float32Array }>): Promise<void> {
    if (points.length === 0) return;
    const { name, dim } = this.store.require(this.name);
    for (const { vector } of points) {
      if (vector.length !== dim)
        throw new Error(`Vector width ${vector.length} does not match collection ${name} (${dim}).`);
    }
    const existing = this.db.prepare('SELECT key FROM points WHERE collection = ? AND image_id = ?');
    const remove = this.db.prepare('DELETE FROM points WHERE key = ?');
    const insert = this.db.prepare(
      `INSERT INTO points (collection, image_id, item_id, item_name, item_code, file, sha256, bytes, model, ` +
        `created_at, vector)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.store.write(name, () => {
      const added: number[] = [];
      const removed: number[] = [];
      for (const { record, vector } of points) {
        const old = existing.get(name, record.imageId) as { key: number } | undefined;
        if (old) {
          remove.run(old.key);
          removed.push(old.key);
        }
        const unit = l2Normalize(Float32Array.from(vector));
        const result = insert.run(
          name,
          record.imageId,
          record.itemId,
          record.itemName,
          record.itemCode,
          record.file,
          record.sha256,
          record.bytes,
          record.model,
          record.createdAt,
          toBlob(unit),
        );
        added.push(Number(result.lastInsertRowid));
      }
      return { added, removed };
    });
  }

  async image(imageId: string): Promise<ImageRecord | undefined> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return undefined;
    const row = this.db
      .prepare(`SELECT ${RECORD_COLUMNS} FROM points WHERE collection = ? AND image_id = ?`)
      .get(resolved.name, imageId) as PointRow | undefined;
    return row && toRecord(row);
  }

  async itemImages(itemId: string): Promise<ImageRecord[]> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return [];
    const rows = this.db
      .prepare(`SELECT ${RECORD_COLUMNS} FROM points WHERE collection = ? AND item_id = ? ORDER BY created_at, key`)
      .all(resolved.name, itemId) as PointRow[];
    return rows.map(toRecord);
  }

  async searchItems(vector: Float32Array, limit: number): Promise<ItemMatch[]> {
    const { name, dim } = this.store.require(this.name);
    if (vector.length !== dim)
      throw new Error(`Query width ${vector.length} does not match collection ${name} (${dim}).`);
    const index = this.store.index(name, dim);
    const total = index.size();
    if (total === 0 || limit <= 0) return [];
    const query = l2Normalize(Float32Array.from(vector));
    const rowsByKey = this.db.prepare(`SELECT ${RECORD_COLUMNS}, vector FROM points WHERE key = ?`);
    // Items with many images take several candidates; widen until enough distinct items are found.
    let wanted = Math.min(total, Math.max(64, limit * 8));
    for (;;) {
      const found = index.search(query, wanted, 0);
      const best = new Map<string, ItemMatch>();
      for (const key of found.keys) {
        const row = rowsByKey.get(Number(key)) as PointRow | undefined;
        if (!row?.vector) continue;
        // Rescore exactly in float32: the index stores f16 and the caller sees the true cosine.
        const score = dot(query, toVector(row.vector));
        const current = best.get(row.item_id);
        if (!current || score > current.score) best.set(row.item_id, { record: toRecord(row), score });
      }
      if (best.size >= limit || wanted >= total) {
        return [...best.values()].sort((a, b) => b.score - a.score).slice(0, limit);
      }
      wanted = Math.min(total, wanted * 4);
    }
  }

  async deleteImages(imageIds: string[]): Promise<void> {
    const resolved = this.store.resolve(this.name);
    if (!resolved || imageIds.length === 0) return;
    const find = this.db.prepare('SELECT key FROM points WHERE collection = ? AND image_id = ?');
    const remove = this.db.prepare('DELETE FROM points WHERE key = ?');
    this.store.write(resolved.name, () => {
      const removed: number[] = [];
      for (const imageId of imageIds) {
        const row = find.get(resolved.name, imageId) as { key: number } | undefined;
        if (!row) continue;
        remove.run(row.key);
        removed.push(row.key);
      }
      return { added: [], removed };
    });
  }

  async deleteItem(itemId: string): Promise<void> {
    await this.deleteWhere('item_id = ?', [itemId]);
  }

  async deleteAll(): Promise<void> {
    await this.deleteWhere('1 = 1', []);
  }

  private async deleteWhere(condition: string, params: unknown[]): Promise<void> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return;
    this.store.write(resolved.name, () => {
      const keys = this.db
        .prepare(`SELECT key FROM points WHERE collection = ? AND ${condition}`)
        .pluck()
        .all(resolved.name, ...params) as number[];
      this.db.prepare(`DELETE FROM points WHERE collection = ? AND ${condition}`).run(resolved.name, ...params);
      return { added: [], removed: keys };
    });
  }

  async scroll(options: { after?: string; limit: number; withVectors?: boolean }): Promise<ScrollPage> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return { points: [] };
    const rows = this.db
      .prepare(
        `SELECT ${RECORD_COLUMNS}${options.withVectors ? ', vector' : ''} FROM points
         WHERE collection = ? AND image_id > ? ORDER BY image_id LIMIT ?`,
      )
      .all(resolved.name, options.after ?? '', options.limit + 1) as PointRow[];
    const page = rows.slice(0, options.limit);
    return {
      points: page.map((row) => ({ record: toRecord(row), ...(row.vector ? { vector: toVector(row.vector) } : {}) })),
      next: rows.length > options.limit ? page[page.length - 1].image_id : undefined,
    };
  }

  async count(): Promise<number> {
    return (await this.info())?.points ?? 0;
  }
}

export function openEmbeddedStore(options: EmbeddedStoreOptions): EmbeddedStore {
  return guarded(new EmbeddedStore(options));
}
