// The embedded database's schema and its forward migrations. `PRAGMA user_version` says which migrations
// a database has had (0 = the first release, which had no version); opening runs the missing ones, each in
// its own transaction, so a crash mid-way leaves the database at the last complete version. A database made
// by a newer release is refused instead of being guessed at.
import type { Db } from './database.js';

export class SchemaError extends Error {
  override name = 'SchemaError';
}

interface Migration {
  version: number;
  why: string;
  up: (db: Db) => void;
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    why: 'the first schema (databases made before versioning already have it)',
    up: (db) =>
      db.exec(`
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
          collection TEXT PRIMARY KEY, seq INTEGER NOT NULL, file TEXT NOT NULL);`),
  },
  {
    version: 2,
    why:
      'the vector index moved from usearch to our own format: checkpoints record their size and SHA-256 ' +
      '(old usearch checkpoints are forgotten, never loaded), and a wipe is one "clear" entry in the change log',
    up: (db) =>
      db.exec(`
        DROP TABLE checkpoints;
        CREATE TABLE checkpoints (
          collection TEXT PRIMARY KEY, seq INTEGER NOT NULL, file TEXT NOT NULL,
          bytes INTEGER NOT NULL, sha256 TEXT NOT NULL);
        CREATE TABLE changes_v2 (
          seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, key INTEGER NOT NULL,
          op TEXT NOT NULL CHECK (op IN ('add', 'del', 'clear')));
        INSERT INTO changes_v2 (seq, collection, key, op) SELECT seq, collection, key, op FROM changes;
        DROP TABLE changes;
        ALTER TABLE changes_v2 RENAME TO changes;
        CREATE INDEX changes_by_collection ON changes (collection, seq);`),
  },
  {
    version: 3,
    why:
      'item group, brand and disabled (filterable), the image kind (catalog or photo), where an image came from ' +
      '(the API or the ERPNext sync) and its perceptual hash',
    up: (db) =>
      db.exec(`
        ALTER TABLE points ADD COLUMN item_group TEXT;
        ALTER TABLE points ADD COLUMN brand TEXT;
        ALTER TABLE points ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE points ADD COLUMN kind TEXT NOT NULL DEFAULT 'catalog';
        ALTER TABLE points ADD COLUMN source TEXT NOT NULL DEFAULT 'api';
        ALTER TABLE points ADD COLUMN source_ref TEXT;
        ALTER TABLE points ADD COLUMN phash TEXT;
        CREATE INDEX points_by_sha256 ON points (collection, sha256);
        CREATE INDEX points_by_group ON points (collection, item_group);
        CREATE INDEX points_by_brand ON points (collection, brand);
        CREATE INDEX points_by_disabled ON points (collection, disabled);`),
  },
  {
    version: 4,
    why:
      'per-item centroids of each image kind, kept with every write and indexed, for item-level scoring; the ' +
      'change log and the index checkpoints name the index (space) they belong to',
    up: (db) => {
      db.exec(`
        CREATE TABLE item_kinds (
          key INTEGER PRIMARY KEY AUTOINCREMENT,
          collection TEXT NOT NULL REFERENCES collections(name),
          item_id TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL, centroid BLOB NOT NULL,
          UNIQUE (collection, item_id, kind));
        CREATE INDEX item_kinds_by_kind ON item_kinds (collection, kind);
        ALTER TABLE changes ADD COLUMN space TEXT NOT NULL DEFAULT 'image';
        DROP INDEX changes_by_collection;
        CREATE INDEX changes_by_space ON changes (collection, space, seq);
        CREATE TABLE checkpoints_v4 (
          collection TEXT NOT NULL, space TEXT NOT NULL, seq INTEGER NOT NULL, file TEXT NOT NULL,
          bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (collection, space));
        INSERT INTO checkpoints_v4 SELECT collection, 'image', seq, file, bytes, sha256 FROM checkpoints;
        DROP TABLE checkpoints;
        ALTER TABLE checkpoints_v4 RENAME TO checkpoints;`);
      // Centroids of the images already stored (the indexes are built from them at first use).
      const collections = db.prepare('SELECT name FROM collections').pluck().all() as string[];
      for (const collection of collections) rebuildCentroids(db, collection);
    },
  },
  {
    version: 5,
    why: "collections record the SHA-256 of the model file that made their vectors (the model's weights)",
    up: (db) => db.exec('ALTER TABLE collections ADD COLUMN model_sha256 TEXT'),
  },
];

/**
 * Recomputes every item centroid of a collection from its points (the migration that introduced them,
 * and `ops check --repair`), logging the changes for the indexes. Returns how many centroids there are.
 */
export function rebuildCentroids(db: Db, collection: string): number {
  const log = db.prepare('INSERT INTO changes (collection, key, op, space) VALUES (?, ?, ?, ?)');
  for (const row of db.prepare('SELECT key, kind FROM item_kinds WHERE collection = ?').all(collection) as Array<{
    key: number;
    kind: string;
  }>) {
    log.run(collection, row.key, 'del', row.kind);
  }
  db.prepare('DELETE FROM item_kinds WHERE collection = ?').run(collection);
  const items = db
    .prepare('SELECT DISTINCT item_id FROM points WHERE collection = ?')
    .pluck()
    .all(collection) as string[];
  for (const itemId of items) writeCentroids(db, collection, itemId);
  return db.prepare('SELECT COUNT(*) FROM item_kinds WHERE collection = ?').pluck().get(collection) as number;
}

/**
 * Makes an item's centroid rows match its points: one row per kind it has images of, holding the
 * normalised mean of those images' (unit) vectors; rows of kinds it no longer has go. Every change is
 * logged for the kind's index. Runs inside the caller's transaction.
 */
export function writeCentroids(db: Db, collection: string, itemId: string): void {
  const log = db.prepare('INSERT INTO changes (collection, key, op, space) VALUES (?, ?, ?, ?)');
  const old = db
    .prepare('SELECT key, kind FROM item_kinds WHERE collection = ? AND item_id = ?')
    .all(collection, itemId) as Array<{ key: number; kind: string }>;
  const sums = new Map<string, { sum: Float32Array; count: number }>();
  for (const row of db
    .prepare('SELECT kind, vector FROM points WHERE collection = ? AND item_id = ?')
    .iterate(collection, itemId) as Iterable<{ kind: string; vector: Buffer }>) {
    const vector = new Float32Array(new Uint8Array(row.vector).buffer);
    let entry = sums.get(row.kind);
    if (!entry) sums.set(row.kind, (entry = { sum: new Float32Array(vector.length), count: 0 }));
    for (let i = 0; i < vector.length; i++) entry.sum[i]! += vector[i]!;
    entry.count++;
  }
  for (const row of old) {
    db.prepare('DELETE FROM item_kinds WHERE key = ?').run(row.key);
    log.run(collection, row.key, 'del', row.kind);
  }
  const insert = db.prepare(
    'INSERT INTO item_kinds (collection, item_id, kind, count, centroid) VALUES (?, ?, ?, ?, ?)',
  );
  for (const [kind, { sum, count }] of sums) {
    let norm = 0;
    for (const x of sum) norm += x * x;
    norm = Math.sqrt(norm) || 1;
    const centroid = sum.map((x) => x / norm);
    const key = Number(insert.run(collection, itemId, kind, count, Buffer.from(centroid.buffer)).lastInsertRowid);
    log.run(collection, key, 'add', kind);
  }
}

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Brings the database to SCHEMA_VERSION; returns the migrations applied (for the log). */
export function migrate(db: Db): string[] {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new SchemaError(
      `The embedded database ${db.name} has schema version ${current}, made by a newer release of this service ` +
        `(this one knows up to ${SCHEMA_VERSION}). Run the newer release, or restore a backup made by this one.`,
    );
  }
  const applied: string[] = [];
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      migration.up(db);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
    applied.push(`schema ${migration.version}: ${migration.why}`);
  }
  return applied;
}
