// Keeps one vector index per collection in step with the database. The database is the truth: every
// write appends to the `changes` log in the same transaction as the point, and a process applies the log
// before it searches, so several processes (the API and an operations command) stay coherent. Indexes are
// checkpointed now and then (checkpoint.ts); after a restart or kill -9 a process loads the newest
// checkpoint whose size and SHA-256 match the database's record and replays the log after it, and rebuilds
// from the points when there is none, when it is damaged, or when the backlog is long.
//
// No step holds the event loop for long: a rebuild reads the points in pages with pauses between them,
// training runs in slices (vector-index.ts), checkpoints are written asynchronously from a copy.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { asStoreError, type Db } from './database.js';
import { readCheckpoint, writeCheckpoint, encodeCheckpointParts } from './vector-index/checkpoint.js';
import { VectorIndex } from './vector-index/vector-index.js';

export interface IndexManagerOptions {
  /** Checkpoint a collection's index after this many logged changes (default 2000). */
  checkpointEvery?: number;
  /** Passed to every VectorIndex (tests use small values to exercise clustering). */
  trainAt?: number;
  log: (message: string) => void;
}

/** Beyond this many logged changes a process rebuilds its index in bulk instead of replaying them. */
const REPLAY_LIMIT = 50_000;
/** Points read per page by a rebuild, and log entries per page of a replay. */
const PAGE = 1000;
const EXTENSION = '.vidx';

interface Loaded {
  index: VectorIndex;
  dim: number;
  appliedSeq: number;
}

interface CheckpointRow {
  seq: number;
  file: string;
  bytes: number;
  sha256: string;
}

interface State {
  loaded?: Loaded;
  loading?: Promise<Loaded>;
  checkpointing?: Promise<void>;
  /** After a failed checkpoint (e.g. disk full), the backlog at which to try again. */
  retryAtBacklog?: number;
}

const toVector = (blob: Buffer) => new Float32Array(new Uint8Array(blob).buffer);
const pause = () => new Promise<void>((resolve) => setImmediate(resolve));

export class IndexManager {
  private readonly states = new Map<string, State>();
  private readonly checkpointEvery: number;
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly dir: string,
    private readonly options: IndexManagerOptions,
  ) {
    this.checkpointEvery = options.checkpointEvery ?? 2000;
  }

  private state(collection: string): State {
    let state = this.states.get(collection);
    if (!state) this.states.set(collection, (state = {}));
    return state;
  }

  private checkpointRow(collection: string): CheckpointRow | undefined {
    return this.db.prepare('SELECT seq, file, bytes, sha256 FROM checkpoints WHERE collection = ?').get(collection) as
      CheckpointRow | undefined;
  }

  /** The last change-log sequence number ever handed out (it survives pruning). */
  private lastSeq(): number {
    const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").get() as
      { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  backlog(collection: string, afterSeq: number): number {
    const row = this.db
      .prepare('SELECT COUNT(*) AS n FROM changes WHERE collection = ? AND seq > ?')
      .get(collection, afterSeq) as { n: number };
    return row.n;
  }

  /** The collection's index, brought up to date with the change log. */
  async current(collection: string, dim: number): Promise<VectorIndex> {
    const state = this.state(collection);
    for (;;) {
      let loaded = state.loaded;
      const checkpoint = this.checkpointRow(collection);
      // Log entries up to a checkpoint may be pruned: a process that is behind starts again from it.
      if (loaded && (loaded.dim !== dim || (checkpoint && loaded.appliedSeq < checkpoint.seq))) {
        state.loaded = loaded = undefined;
      }
      if (!loaded) {
        state.loading ??= this.load(collection, dim).finally(() => (state.loading = undefined));
        loaded = state.loaded = await state.loading;
        continue; // check again: the log may have been pruned while loading
      }
      if (this.backlog(collection, loaded.appliedSeq) > REPLAY_LIMIT) {
        state.loaded = undefined;
        state.loading ??= this.rebuild(collection, dim).finally(() => (state.loading = undefined));
        state.loaded = await state.loading;
        continue;
      }
      this.replay(collection, loaded);
      if (loaded.index.needsTraining()) {
        loaded.index
          .train()
          .catch((error: unknown) => this.options.log(`Training the index of ${collection} failed: ${String(error)}`));
      }
      return loaded.index;
    }
  }

  /** Called after each write: schedules a checkpoint once enough changes have been logged. */
  afterWrite(collection: string): void {
    const state = this.state(collection);
    if (!state.loaded || state.checkpointing || this.closed) return;
    const checkpoint = this.checkpointRow(collection);
    const backlog = this.backlog(collection, checkpoint?.seq ?? 0);
    if (backlog < Math.max(this.checkpointEvery, state.retryAtBacklog ?? 0)) return;
    this.checkpoint(collection).catch(() => undefined); // failures are logged inside
  }

  private async load(collection: string, dim: number): Promise<Loaded> {
    const checkpoint = this.checkpointRow(collection);
    if (checkpoint) {
      try {
        const snapshot = await readCheckpoint(path.join(this.dir, checkpoint.file), checkpoint);
        if (snapshot.dim !== dim) throw new Error(`it holds ${snapshot.dim}-d vectors, the collection ${dim}-d`);
        const index = VectorIndex.fromSnapshot(snapshot, { trainAt: this.options.trainAt });
        return { index, dim, appliedSeq: checkpoint.seq };
      } catch (error) {
        this.options.log(
          `Index checkpoint ${checkpoint.file} of ${collection} is not usable (${(error as Error).message}); ` +
            'rebuilding the index from the database.',
        );
      }
    }
    return this.rebuild(collection, dim);
  }

  /** Reads every point of the collection in pages; the log after the starting position is replayed next. */
  private async rebuild(collection: string, dim: number): Promise<Loaded> {
    const startedAt = Date.now();
    const index = new VectorIndex({ dim, trainAt: this.options.trainAt });
    const appliedSeq = this.lastSeq();
    const page = this.db.prepare(
      'SELECT key, vector FROM points WHERE collection = ? AND key > ? ORDER BY key LIMIT ?',
    );
    let after = 0;
    for (;;) {
      const rows = page.all(collection, after, PAGE) as Array<{ key: number; vector: Buffer }>;
      for (const row of rows) index.add(row.key, toVector(row.vector));
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1].key;
      await pause();
    }
    if (index.needsTraining()) await index.train();
    if (index.size > 0) {
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      this.options.log(`Rebuilt the vector index of ${collection} from ${index.size} points in ${seconds} s.`);
    }
    // Points read above may have changed meanwhile: replaying the log from the start position is
    // idempotent (adds replace by key, keys are never reused) and brings the index up to date.
    return { index, dim, appliedSeq };
  }

  /** Applies the logged changes after `loaded.appliedSeq`, page by page. */
  private replay(collection: string, loaded: Loaded): void {
    const entries = this.db.prepare(
      'SELECT seq, key, op FROM changes WHERE collection = ? AND seq > ? ORDER BY seq LIMIT ?',
    );
    const vectorOf = this.db.prepare('SELECT vector FROM points WHERE key = ?').pluck();
    for (;;) {
      const changes = entries.all(collection, loaded.appliedSeq, PAGE) as Array<{
        seq: number;
        key: number;
        op: 'add' | 'del' | 'clear';
      }>;
      for (const { seq, key, op } of changes) {
        if (op === 'clear') {
          loaded.index.clear();
        } else if (op === 'del') {
          loaded.index.remove(key);
        } else {
          const blob = vectorOf.get(key) as Buffer | undefined;
          if (blob) loaded.index.add(key, toVector(blob)); // absent: deleted since; its 'del' follows
        }
        loaded.appliedSeq = seq;
      }
      if (changes.length < PAGE) return;
    }
  }

  /**
   * Saves the collection's index (loading it first if needed), records it, prunes the log up to it and
   * removes older checkpoint files. A failure (disk full) is logged, leaves no partial file, and the next
   * attempt waits for another batch of changes.
   */
  async checkpoint(collection: string, dim?: number): Promise<void> {
    const state = this.state(collection);
    if (state.checkpointing) return state.checkpointing;
    state.checkpointing = this.writeCheckpointOf(collection, state, dim).finally(
      () => (state.checkpointing = undefined),
    );
    return state.checkpointing;
  }

  private async writeCheckpointOf(collection: string, state: State, dim?: number): Promise<void> {
    if (dim !== undefined) await this.current(collection, dim);
    const loaded = state.loaded;
    if (!loaded) return;
    this.replay(collection, loaded);
    const seq = loaded.appliedSeq;
    const recorded = this.checkpointRow(collection);
    if (recorded && recorded.seq >= seq) return;
    const file = `${encodeURIComponent(collection)}.${seq}${EXTENSION}`;
    const target = path.join(this.dir, file);
    let written: { bytes: number; sha256: string };
    try {
      written = await writeCheckpoint(target, encodeCheckpointParts(loaded.index.snapshot()));
    } catch (error) {
      state.retryAtBacklog = this.backlog(collection, recorded?.seq ?? 0) + this.checkpointEvery;
      this.options.log(
        `Could not save the index checkpoint of ${collection} (${(error as Error).message}); searches are not ` +
          'affected, the next start may take longer. Will try again later.',
      );
      throw asStoreError(error);
    }
    state.retryAtBacklog = undefined;
    const updated = this.db
      .transaction((): boolean => {
        const latest = this.checkpointRow(collection);
        if (latest && latest.seq >= seq) return false;
        this.db
          .prepare(
            `INSERT INTO checkpoints (collection, seq, file, bytes, sha256) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (collection) DO UPDATE SET seq = excluded.seq, file = excluded.file,
               bytes = excluded.bytes, sha256 = excluded.sha256`,
          )
          .run(collection, seq, file, written.bytes, written.sha256);
        this.db.prepare('DELETE FROM changes WHERE collection = ? AND seq <= ?').run(collection, seq);
        return true;
      })
      .immediate();
    if (!updated) await rm(target, { force: true });
    await this.removeFiles(collection, updated ? file : this.checkpointRow(collection)?.file);
  }

  /** Removes the collection's checkpoint files (and leftovers of other formats) except `keep`. */
  async removeFiles(collection: string, keep?: string): Promise<void> {
    const prefix = `${encodeURIComponent(collection)}.`;
    let files: string[];
    try {
      files = await readdir(this.dir);
    } catch {
      return;
    }
    await Promise.all(
      files
        .filter((file) => file.startsWith(prefix) && file !== keep)
        .map((file) => rm(path.join(this.dir, file), { force: true })),
    );
  }

  /** Forgets a collection's index (after the collection is deleted). */
  async drop(collection: string): Promise<void> {
    await this.states.get(collection)?.checkpointing?.catch(() => undefined);
    this.states.delete(collection);
    await this.removeFiles(collection);
  }

  /** Saves every loaded index whose checkpoint is behind; failures are logged, not thrown. */
  async close(): Promise<void> {
    this.closed = true;
    for (const [collection, state] of this.states) {
      await state.loading?.catch(() => undefined);
      if (state.loaded) await this.checkpoint(collection).catch(() => undefined);
    }
    this.states.clear();
  }
}
