// The embedded store's SQLite database: opened once per process with the settings that make an
// acknowledged write survive a crash or power loss, and one translation of SQLite's failures into the
// store port's errors (disk full → StoreFullError, I/O trouble → StoreUnavailableError).
import Database from 'better-sqlite3';
import { StoreFullError, StoreUnavailableError } from '../port.js';

export type Db = Database.Database;

export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // FULL: a write the API acknowledged survives power loss, not only a killed process.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 10000');
  return db;
}

/** SQLite failures that mean "the store cannot serve now" (I/O error, locked too long, closed, damaged),
 * as opposed to programming errors. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|READONLY|CORRUPT|NOTADB)/;

export function asStoreError(error: unknown): unknown {
  const code = (error as { code?: string }).code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code.startsWith('SQLITE_FULL') || code === 'ENOSPC') {
    return new StoreFullError(`The disk under DATA_DIR is full (${message}). Free space; nothing was changed.`);
  }
  if (UNAVAILABLE.test(code) || /database connection is not open/.test(message)) {
    return new StoreUnavailableError(
      `The embedded database cannot be used: ${message}. Check the disk under DATA_DIR.`,
    );
  }
  return error;
}

/** Wraps every method of `target` so that its failures (thrown or rejected) pass through asStoreError. */
export function guarded<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(object, args);
        } catch (error) {
          throw asStoreError(error) as Error;
        }
        return result instanceof Promise
          ? result.catch((error: unknown) => Promise.reject(asStoreError(error) as Error))
          : result;
      };
    },
  });
}
