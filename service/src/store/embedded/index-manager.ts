// Keeps the vector indexes of every collection in step with the database. A collection has one index per
// space: `image` (one vector per stored image) and one per image kind (`catalog`, `photo`: one centroid per
// item that has images of that kind). The database is the truth: every write appends to the `changes` log
// in the same transaction as the row, and a process applies the log before it searches, so several
// processes (the API and an operations command) stay coherent. Indexes are checkpointed now and then
// (vector-index/checkpoint.ts); after a restart or kill -9 a process loads the newest checkpoint whose size
// and SHA-256 match the database's record and replays the log after it, and rebuilds from the rows when
// there is none, when it is damaged, or when the backlog is long.
//
// No step holds the event loop for long: a rebuild reads the rows in pages with pauses between them,
// training runs in slices (vector-index.ts), checkpoints are written asynchronously from a copy.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { asStoreError, type Db } from './database.js';
import { encodeCheckpointParts, readCheckpoint, writeCheckpoint } from './vector-index/checkpoint.js';
import { VectorIndex } from './vector-index/vector-index.js';

/** What an index holds: image vectors, or the item centroids of one image kind. */
export type Space = 'image' | 'catalog' | 'photo';
export const SPACES: Space[] = ['image', 'catalog', 'photo'];

export interface IndexManagerOptions {
  /** Checkpoint an index after this many logged changes (default 2000). */
  checkpointEvery?: number;
  /** Passed to every VectorIndex (tests use small values to exercise clustering). */
  trainAt?: number;
  log: (message: string) => void;
}

/** Beyond this many logged changes a process rebuilds its index in bulk instead of replaying them. */
const REPLAY_LIMIT = 50_000;
/** Rows read per page by a rebuild, and log entries per page of a replay. */
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

/** Where each space's vectors live (image vectors in points, centroids in item_kinds). */
function source(space: Space): { all: string; one: string } {
  return space === 'image'
    ? {
        all: 'SELECT key, vector FROM points WHERE collection = ? AND key > ? ORDER BY key LIMIT ?',
        one: 'SELECT vector FROM points WHERE key = ?',
      }
    : {
        all: `SELECT key, centroid AS vector FROM item_kinds WHERE collection = ? AND kind = '${space}' AND key > ?
              ORDER BY key LIMIT ?`,
        one: 'SELECT centroid FROM item_kinds WHERE key = ?',
      };
}

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

  private state(collection: string, space: Space): State {
    const id = `${collection}\u0000${space}`;
    let state = this.states.get(id);
    if (!state) this.states.set(id, (state = {}));
    return state;
  }

  private checkpointRow(collection: string, space: Space): CheckpointRow | undefined {
    return this.db
      .prepare('SELECT seq, file, bytes, sha256 FROM checkpoints WHERE collection = ? AND space = ?')
      .get(collection, space) as CheckpointRow | undefined;
  }

  /** The last change-log sequence number ever handed out (it survives pruning). */
  private lastSeq(): number {
    const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").get() as
      { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  backlog(collection: string, space: Space, afterSeq: number): number {
    return this.db
      .prepare('SELECT COUNT(*) FROM changes WHERE collection = ? AND space = ? AND seq > ?')
      .pluck()
      .get(collection, space, afterSeq) as number;
  }

  /** The index of one space of a collection, brought up to date with the change log. */
  async current(collection: string, dim: number, space: Space = 'image'): Promise<VectorIndex> {
    const state = this.state(collection, space);
    for (;;) {
      let loaded = state.loaded;
      const checkpoint = this.checkpointRow(collection, space);
      // Log entries up to a checkpoint may be pruned: a process that is behind starts again from it.
      if (loaded && (loaded.dim !== dim || (checkpoint && loaded.appliedSeq < checkpoint.seq))) {
        state.loaded = loaded = undefined;
      }
      if (!loaded) {
        state.loading ??= this.load(collection, space, dim).finally(() => (state.loading = undefined));
        loaded = state.loaded = await state.loading;
        continue; // check again: the log may have been pruned while loading
      }
      if (this.backlog(collection, space, loaded.appliedSeq) > REPLAY_LIMIT) {
        state.loaded = undefined;
        state.loading ??= this.rebuild(collection, space, dim).finally(() => (state.loading = undefined));
        state.loaded = await state.loading;
        continue;
      }
      this.replay(collection, space, loaded);
      if (loaded.index.needsTraining()) {
        loaded.index
          .train()
          .catch((error: unknown) =>
            this.options.log(`Training the ${space} index of ${collection} failed: ${String(error)}`),
          );
      }
      return loaded.index;
    }
  }

  /** Called after each write: schedules a checkpoint of any index that logged enough changes. */
  afterWrite(collection: string): void {
    if (this.closed) return;
    for (const space of SPACES) {
      const state = this.state(collection, space);
      if (!state.loaded || state.checkpointing) continue;
      const checkpoint = this.checkpointRow(collection, space);
      const backlog = this.backlog(collection, space, checkpoint?.seq ?? 0);
      if (backlog < Math.max(this.checkpointEvery, state.retryAtBacklog ?? 0)) continue;
      this.checkpoint(collection, space).catch(() => undefined); // failures are logged inside
    }
  }

  private async load(collection: string, space: Space, dim: number): Promise<Loaded> {
    const checkpoint = this.checkpointRow(collection, space);
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
    return this.rebuild(collection, space, dim);
  }

  /** Reads every row of the space in pages; the log after the starting position is replayed next. */
  private async rebuild(collection: string, space: Space, dim: number): Promise<Loaded> {
    const startedAt = Date.now();
    const index = new VectorIndex({ dim, trainAt: this.options.trainAt });
    const appliedSeq = this.lastSeq();
    const page = this.db.prepare(source(space).all);
    let after = 0;
    for (;;) {
      const rows = page.all(collection, after, PAGE) as Array<{ key: number; vector: Buffer }>;
      for (const row of rows) index.add(row.key, toVector(row.vector));
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.key;
      await pause();
    }
    if (index.needsTraining()) await index.train();
    if (index.size > 0) {
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      const what = space === 'image' ? 'points' : `${space} centroids`;
      this.options.log(`Rebuilt the vector index of ${collection} from ${index.size} ${what} in ${seconds} s.`);
    }
    // Rows read above may have changed meanwhile: replaying the log from the start position is
    // idempotent (adds replace by key, keys are never reused) and brings the index up to date.
    return { index, dim, appliedSeq };
  }

  /** Applies the logged changes of the space after `loaded.appliedSeq`, page by page. */
  private replay(collection: string, space: Space, loaded: Loaded): void {
    const entries = this.db.prepare(
      'SELECT seq, key, op FROM changes WHERE collection = ? AND space = ? AND seq > ? ORDER BY seq LIMIT ?',
    );
    const vectorOf = this.db.prepare(source(space).one).pluck();
    for (;;) {
      const changes = entries.all(collection, space, loaded.appliedSeq, PAGE) as Array<{
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
   * Saves the index of one space (loading it first if needed), records it, prunes its log up to it and
   * removes older checkpoint files. A failure (disk full) is logged, leaves no partial file, and the next
   * attempt waits for another batch of changes.
   */
  async checkpoint(collection: string, space: Space, dim?: number): Promise<void> {
    const state = this.state(collection, space);
    if (state.checkpointing) return state.checkpointing;
    state.checkpointing = this.writeCheckpointOf(collection, space, state, dim).finally(
      () => (state.checkpointing = undefined),
    );
    return state.checkpointing;
  }

  private async writeCheckpointOf(collection: string, space: Space, state: State, dim?: number): Promise<void> {
    if (dim !== undefined) await this.current(collection, dim, space);
    const loaded = state.loaded;
    if (!loaded) return;
    this.replay(collection, space, loaded);
    const seq = loaded.appliedSeq;
    const recorded = this.checkpointRow(collection, space);
    if (recorded && recorded.seq >= seq) return;
    const file = `${encodeURIComponent(collection)}.${space}.${seq}${EXTENSION}`;
    const target = path.join(this.dir, file);
    let written: { bytes: number; sha256: string };
    try {
      written = await writeCheckpoint(target, encodeCheckpointParts(loaded.index.snapshot()));
    } catch (error) {
      state.retryAtBacklog = this.backlog(collection, space, recorded?.seq ?? 0) + this.checkpointEvery;
      this.options.log(
        `Could not save the ${space} index checkpoint of ${collection} (${(error as Error).message}); searches ` +
          'are not affected, the next start may take longer. Will try again later.',
      );
      throw asStoreError(error);
    }
    state.retryAtBacklog = undefined;
    const updated = this.db
      .transaction((): boolean => {
        const latest = this.checkpointRow(collection, space);
        if (latest && latest.seq >= seq) return false;
        this.db
          .prepare(
            `INSERT INTO checkpoints (collection, space, seq, file, bytes, sha256) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (collection, space) DO UPDATE SET seq = excluded.seq, file = excluded.file,
               bytes = excluded.bytes, sha256 = excluded.sha256`,
          )
          .run(collection, space, seq, file, written.bytes, written.sha256);
        this.db
          .prepare('DELETE FROM changes WHERE collection = ? AND space = ? AND seq <= ?')
          .run(collection, space, seq);
        return true;
      })
      .immediate();
    if (!updated) await rm(target, { force: true });
    await this.removeFiles(collection, space, updated ? file : this.checkpointRow(collection, space)?.file);
  }

  /**
   * Removes the space's checkpoint files except `keep`, and leftovers of older formats (checkpoints without a
   * space, usearch files); without a space, every file of the collection.
   */
  async removeFiles(collection: string, space?: Space, keep?: string): Promise<void> {
    const prefix = `${encodeURIComponent(collection)}.`;
    let files: string[];
    try {
      files = await readdir(this.dir);
    } catch {
      return;
    }
    const ofSomeSpace = (rest: string) => SPACES.some((s) => rest.startsWith(`${s}.`));
    await Promise.all(
      files
        .filter((file) => {
          if (!file.startsWith(prefix) || file === keep) return false;
          const rest = file.slice(prefix.length);
          return space === undefined || rest.startsWith(`${space}.`) || !ofSomeSpace(rest);
        })
        .map((file) => rm(path.join(this.dir, file), { force: true })),
    );
  }

  /** Forgets a collection's indexes (after the collection is deleted). */
  async drop(collection: string): Promise<void> {
    for (const space of SPACES) {
      const id = `${collection}\u0000${space}`;
      await this.states.get(id)?.checkpointing?.catch(() => undefined);
      this.states.delete(id);
    }
    await this.removeFiles(collection);
  }

  /** Saves every loaded index whose checkpoint is behind; failures are logged, not thrown. */
  async close(): Promise<void> {
    this.closed = true;
    for (const [id, state] of this.states) {
      await state.loading?.catch(() => undefined);
      const [collection, space] = id.split('\u0000') as [string, Space];
      if (state.loaded) await this.checkpoint(collection, space).catch(() => undefined);
    }
    this.states.clear();
  }
}
