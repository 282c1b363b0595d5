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
];

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
