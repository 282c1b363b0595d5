// Locks that hold across processes: the API and an `ops sync` process (or two API containers on one data
// volume) must not write the same item at once, and only one ERPNext sync may run. Each lock is an SQLite
// database file held in an EXCLUSIVE transaction: SQLite takes a POSIX advisory lock on the file, which the
// kernel releases when the holder exits in any way, kill -9 included, so a lock can never be left stale and
// needs no pid check (which would fail across containers). The files stay empty (nothing is ever written)
// and are never deleted: deleting a held lock file would let a newcomer lock a fresh file of the same name.
//
// Keys are hashed onto a fixed set of stripes (256 files per namespace): two unrelated items rarely share a
// stripe, and when they do they only wait for each other. Waiting is a short poll (SQLite would otherwise
// block the event loop in its busy handler); inside one process holders of a stripe queue in order instead.
// Nobody holds two stripes of one namespace at once except `all`, which takes them in ascending order, so
// the stripes cannot deadlock.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KeyedLock } from '../catalog/locks.js';
import { readJson, writeJsonAtomic } from './files.js';

/** A lock another process held for longer than the wait allows. */
export class LockTimeoutError extends Error {
  override name = 'LockTimeoutError';
}

export interface ProcessLocksOptions {
  /** Lock files live here (IMAGE_STORAGE_DIR/.locks). */
  dir: string;
  /** Prefix of this set's files, e.g. 'item'. */
  namespace: string;
  /** Longest wait for a lock another process holds (default 30 s). */
  waitMs?: number;
  stripes?: number;
  /** The error a timed-out wait throws (default LockTimeoutError), e.g. a 503 for the API. */
  timeoutError?: (message: string) => Error;
}

const isBusy = (error: unknown) => {
  const code = (error as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One lock file: held while its connection has an open EXCLUSIVE transaction. */
class LockFile {
  private db?: Database.Database;

  constructor(readonly file: string) {}

  /** True when taken, false when another process holds it. */
  tryTake(): boolean {
    try {
      this.db ??= openLockFile(this.file);
      this.db.exec('BEGIN EXCLUSIVE');
      return true;
    } catch (error) {
      if (isBusy(error)) return false;
      throw error;
    }
  }

  release(): void {
    if (this.db?.inTransaction) this.db.exec('ROLLBACK');
  }

  close(): void {
    this.release();
    this.db?.close();
    this.db = undefined;
  }
}

function openLockFile(file: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    // timeout 0: a held lock answers SQLITE_BUSY at once instead of blocking the event loop.
    db = new Database(file, { timeout: 0 });
    // No journal file: taking the lock then needs no disk space, so locks keep working on a full disk (where the
    // catalog answers 507). Setting it reads the file, so it is busy while another process holds the lock.
    db.pragma('journal_mode = MEMORY');
    return db;
  } catch (error) {
    db?.close();
    if (isBusy(error)) throw error;
    throw new Error(
      `Cannot open the lock file ${file} (${(error as Error).message}); the directory must be writable and on a ` +
        'local file system (POSIX locks).',
    );
  }
}

/** Takes `lock`, polling while another process holds it; throws `timeout(...)` after `waitMs`. */
async function take(lock: LockFile, waitMs: number, what: string, timeout: (message: string) => Error): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let delay = 1; !lock.tryTake(); delay = Math.min(delay * 2, 50)) {
    if (Date.now() >= deadline) {
      throw timeout(`${what} has been held by another process for over ${Math.round(waitMs / 1000)} s; retry later`);
    }
    await sleep(delay);
  }
}

/** A set of striped cross-process locks; `run` has the catalog's KeyedLock contract. */
export class ProcessLocks {
  private readonly files: LockFile[];
  /** In-process queue per stripe, in front of the file lock. */
  private readonly queue = new KeyedLock();
  private readonly waitMs: number;
  private readonly timeout: (message: string) => Error;

  constructor(private readonly options: ProcessLocksOptions) {
    const stripes = options.stripes ?? 256;
    const width = (stripes - 1).toString(16).length;
    this.files = Array.from(
      { length: stripes },
      (_, index) =>
        new LockFile(path.join(options.dir, `${options.namespace}-${index.toString(16).padStart(width, '0')}`)),
    );
    this.waitMs = options.waitMs ?? 30_000;
    this.timeout = options.timeoutError ?? ((message) => new LockTimeoutError(message));
  }

  private stripeOf(key: string): number {
    return createHash('sha256').update(key, 'utf8').digest().readUInt32BE(0) % this.files.length;
  }

  /** Runs `job` while holding the lock of `key` in every process sharing the directory. */
  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const stripe = this.stripeOf(key);
    return this.queue.run(String(stripe), async () => {
      const lock = this.files[stripe];
      await take(lock, this.waitMs, `The ${this.options.namespace} lock of ${JSON.stringify(key)}`, this.timeout);
      try {
        return await job();
      } finally {
        lock.release();
      }
    });
  }

  /** Runs `job` while no process holds any lock of this set (recovery at start: nothing is mid-write). */
  async all<T>(job: () => Promise<T>): Promise<T> {
    const hold = async (index: number): Promise<T> => {
      if (index === this.files.length) return job();
      return this.queue.run(String(index), async () => {
        await take(this.files[index], this.waitMs, `The ${this.options.namespace} locks`, this.timeout);
        try {
          return await hold(index + 1);
        } finally {
          this.files[index].release();
        }
      });
    };
    return hold(0);
  }

  close(): void {
    for (const lock of this.files) lock.close();
  }
}

/** Who holds a named lock, written beside it so that a refused process can say who is in the way. */
export interface LockOwner {
  pid: number;
  host: string;
  what: string;
  since: string;
}

/** A single named lock held for a long task (one ERPNext sync at a time); never waits. */
export class NamedProcessLock {
  private readonly lock: LockFile;
  private readonly ownerFile: string;
  private held = false;

  constructor(readonly file: string) {
    this.lock = new LockFile(file);
    this.ownerFile = `${file}.owner.json`;
  }

  /** Takes the lock (recording `what` holds it) and returns true, or returns false at once when it is held. */
  async tryTake(what: string): Promise<boolean> {
    if (this.held || !this.lock.tryTake()) return false;
    this.held = true;
    const owner: LockOwner = { pid: process.pid, host: hostname(), what, since: new Date().toISOString() };
    await writeJsonAtomic(this.ownerFile, owner).catch(() => undefined); // only ever used in a message
    return true;
  }

  /** Who took the lock last (the holder, when it is held); undefined when unknown. */
  async owner(): Promise<LockOwner | undefined> {
    return readJson<LockOwner>(this.ownerFile).catch(() => undefined);
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.lock.release();
  }

  close(): void {
    this.held = false;
    this.lock.close();
  }
}
