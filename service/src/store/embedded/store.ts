// The embedded vector store: SQLite (better-sqlite3, WAL, synchronous=FULL) is the durable truth for
// points, collections and aliases; an in-memory vector index per collection (index-manager.ts) answers
// nearest-neighbour queries. Used when QDRANT_URL is unset: one process, one data directory, no server.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { StoreUnavailableError, type Collection, type CollectionInfo, type VectorStore } from '../port.js';
import { EmbeddedCollection } from './collection.js';
import { guarded, openDatabase, type Db } from './database.js';
import { IndexManager, SPACES } from './index-manager.js';
import { migrate, rebuildCentroids, writeCentroids } from './schema.js';

/** The store's files in its data directory (known only to the embedded adapter). */
export const databaseFile = (dataDir: string) => path.join(dataDir, 'store.sqlite');
export const INDEX_DIR = 'index';

export interface EmbeddedStoreOptions {
  dataDir: string;
  /** Checkpoint the index after this many logged changes (default 2000). */
  checkpointEvery?: number;
  /** Vectors before an index clusters them (default 20,000; tests use less). */
  trainAt?: number;
  log?: (message: string) => void;
}

export class EmbeddedStore implements VectorStore {
  readonly kind = 'embedded' as const;
  private readonly db: Db;
  readonly indexes: IndexManager;

  constructor(options: EmbeddedStoreOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    const indexDir = path.join(options.dataDir, INDEX_DIR);
    mkdirSync(indexDir, { recursive: true });
    const log = options.log ?? (() => {});
    this.db = openDatabase(databaseFile(options.dataDir));
    try {
      for (const applied of migrate(this.db)) log(`Embedded database upgraded to ${applied}.`);
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.indexes = new IndexManager(this.db, indexDir, {
      checkpointEvery: options.checkpointEvery,
      trainAt: options.trainAt,
      log,
    });
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
    return this.db
      .prepare(
        `SELECT c.name, c.dim, c.model, c.model_sha256 AS modelSha256,
           (SELECT COUNT(*) FROM points p WHERE p.collection = c.name) AS points
         FROM collections c ORDER BY c.name`,
      )
      .all() as CollectionInfo[];
  }

  async listAliases(): Promise<Record<string, string>> {
    const rows = this.db.prepare('SELECT alias, collection FROM aliases ORDER BY alias').all() as Array<{
      alias: string;
      collection: string;
    }>;
    return Object.fromEntries(rows.map((row) => [row.alias, row.collection]));
  }

  async createCollection(name: string, dim: number, model: string, modelSha256?: string): Promise<void> {
    this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM aliases WHERE alias = ?').get(name)) {
        throw new Error(`Cannot create collection ${name}: an alias with that name exists.`);
      }
      if (this.db.prepare('SELECT 1 FROM collections WHERE name = ?').get(name)) {
        throw new Error(`Collection ${name} already exists.`);
      }
      this.db
        .prepare('INSERT INTO collections (name, dim, model, model_sha256, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(name, dim, model, modelSha256 ?? null, new Date().toISOString());
    })();
  }

  async deleteCollection(name: string): Promise<void> {
    this.db.transaction(() => {
      for (const table of ['points', 'item_kinds', 'changes', 'checkpoints']) {
        this.db.prepare(`DELETE FROM ${table} WHERE collection = ?`).run(name);
      }
      this.db.prepare('DELETE FROM aliases WHERE collection = ?').run(name);
      this.db.prepare('DELETE FROM collections WHERE name = ?').run(name);
    })();
    await this.indexes.drop(name);
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
          'INSERT INTO aliases (alias, collection) VALUES (?, ?) ' +
            'ON CONFLICT (alias) DO UPDATE SET collection = excluded.collection',
        )
        .run(alias, collection);
    })();
  }

  async ensureSchema(): Promise<void> {
    // The database's schema migrations (schema.ts) ran when it was opened.
  }

  /** Loads (building it if needed) and saves the index of a collection, so the next process to open it
   * starts from the checkpoint instead of rebuilding. */
  async prepareIndex(collection: string): Promise<void> {
    const { name, dim } = this.require(collection);
    for (const space of SPACES) await this.indexes.checkpoint(name, space, dim);
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    await this.indexes.close();
    this.db.close();
  }

  // ---- used by EmbeddedCollection ----

  resolve(name: string): Omit<CollectionInfo, 'points'> | undefined {
    return this.db
      .prepare(
        `SELECT c.name, c.dim, c.model, c.model_sha256 AS modelSha256 FROM collections c
         WHERE c.name = COALESCE((SELECT collection FROM aliases WHERE alias = ?), ?)`,
      )
      .get(name, name) as Omit<CollectionInfo, 'points'> | undefined;
  }

  require(name: string): { name: string; dim: number } {
    const resolved = this.resolve(name);
    if (!resolved) throw new Error(`Collection or alias ${name} does not exist in the embedded store.`);
    return resolved;
  }

  get sql(): Db {
    return this.db;
  }

  /** Applies a write and its change-log entries in one transaction, then maybe schedules a checkpoint. */
  /** Recomputes a collection's centroids from its points (one transaction), for `ops check --repair`. */
  rebuildCentroids(collection: string): number {
    const count = this.db.transaction(() => rebuildCentroids(this.db, collection)).immediate();
    this.indexes.afterWrite(collection);
    return count;
  }

  /**
   * Applies a write, its change-log entries and the centroids of the items it touched in one transaction,
   * then maybe schedules checkpoints.
   */
  write(collection: string, change: () => { added: number[]; removed: number[]; items: Iterable<string> }): void {
    const logChange = this.db.prepare("INSERT INTO changes (collection, key, op, space) VALUES (?, ?, ?, 'image')");
    this.db
      .transaction(() => {
        const { added, removed, items } = change();
        for (const key of removed) logChange.run(collection, key, 'del');
        for (const key of added) logChange.run(collection, key, 'add');
        for (const itemId of new Set(items)) writeCentroids(this.db, collection, itemId);
      })
      .immediate(); // take the write lock up front: deferred upgrades can fail at once under contention
    this.indexes.afterWrite(collection);
  }
}

export function openEmbeddedStore(options: EmbeddedStoreOptions): EmbeddedStore {
  return guarded(new EmbeddedStore(options));
}
