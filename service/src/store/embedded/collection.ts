// The points of one embedded collection: SQLite rows with the true float32 vectors. Every write logs its
// changes for the vector index in the same transaction; searches take candidates from the index and
// re-score them exactly from the rows, so a stale index entry can only cost time, never a wrong answer.
import { l2Normalize } from '../../embedding/model.js';
import { columnValues, ItemFields, RECORD_FIELDS, recordFrom, type ImageKind } from '../../schemas/records.js';
import type {
  CentroidMatch,
  Collection,
  CollectionInfo,
  ImageRecord,
  ItemMatch,
  KindCentroid,
  ScrollPage,
  SearchOptions,
} from '../port.js';
import type { EmbeddedStore } from './store.js';

/** A row: the record's columns (named as its fields) plus the row key and, when asked, the vector. */
type PointRow = Record<string, unknown> & { key: number; item_id: string; image_id: string; vector?: Buffer };

const RECORD_COLUMNS = `key, ${RECORD_FIELDS.join(', ')}`;
const INSERT = `INSERT INTO points (collection, ${RECORD_FIELDS.join(', ')}, vector)
  VALUES (?, ${RECORD_FIELDS.map(() => '?').join(', ')}, ?)`;
/** Rows deleted per transaction by a wipe, so that a wipe of a large collection never blocks for long. */
const DELETE_BATCH = 2000;

const toRecord = (row: PointRow): ImageRecord => recordFrom(row);

/** Below this many matching points a filtered search scores every one of them (about 1 ms per 10,000). */
const EXACT_SUBSET = 20_000;

/** SQL for a search's filter (undefined: none), over indexed columns. */
function filterClause(options: SearchOptions): { sql: string; params: unknown[] } | undefined {
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const field of ['item_group', 'brand'] as const) {
    const values = options.filter?.[field];
    if (!values) continue;
    parts.push(`${field} IN (${values.map(() => '?').join(', ')})`);
    params.push(...values);
  }
  if (!options.includeDisabled) parts.push('disabled = 0');
  return parts.length > 0 ? { sql: parts.join(' AND '), params } : undefined;
}

/** The same filter, on a row already read. */
function matches(row: PointRow, options: SearchOptions): boolean {
  for (const field of ['item_group', 'brand'] as const) {
    const values = options.filter?.[field];
    if (values && !values.includes(row[field] as string)) return false;
  }
  return options.includeDisabled === true || !row.disabled;
}

/** SQLite BLOBs are not guaranteed 4-byte aligned, so copy before viewing them as float32. */
export const toVector = (blob: Buffer) => new Float32Array(new Uint8Array(blob).buffer);
const toBlob = (vector: Float32Array) => Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

export class EmbeddedCollection implements Collection {
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
    const existing = this.db.prepare('SELECT key FROM points WHERE collection = ? AND image_id = ?').pluck();
    const remove = this.db.prepare('DELETE FROM points WHERE key = ?');
    const insert = this.db.prepare(INSERT);
    this.store.write(name, () => {
      const added: number[] = [];
      const removed: number[] = [];
      for (const { record, vector } of points) {
        const old = existing.get(name, record.image_id) as number | undefined;
        if (old !== undefined) {
          remove.run(old);
          removed.push(old);
        }
        const unit = l2Normalize(Float32Array.from(vector));
        const result = insert.run(name, ...columnValues(record), toBlob(unit));
        added.push(Number(result.lastInsertRowid));
      }
      return { added, removed, items: points.map((p) => p.record.item_id) };
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
    return this.imagesWhere('item_id', itemId);
  }

  async imagesByCode(code: string): Promise<ImageRecord[]> {
    return this.imagesWhere('item_code', code);
  }

  /** The images whose field equals value, oldest first (item_id is indexed; item_code is not: a scan). */
  private imagesWhere(field: 'item_id' | 'item_code', value: string): ImageRecord[] {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return [];
    const rows = this.db
      .prepare(`SELECT ${RECORD_COLUMNS} FROM points WHERE collection = ? AND ${field} = ? ORDER BY created_at, key`)
      .all(resolved.name, value) as PointRow[];
    return rows.map(toRecord);
  }

  async searchItems(vector: Float32Array, limit: number, options: SearchOptions = {}): Promise<ItemMatch[]> {
    const { name, dim } = this.store.require(this.name);
    if (vector.length !== dim)
      throw new Error(`Query width ${vector.length} does not match collection ${name} (${dim}).`);
    if (limit <= 0) return [];
    const index = await this.store.indexes.current(name, dim);
    if (index.size === 0) return [];
    const query = l2Normalize(Float32Array.from(vector));
    const rows = this.db.prepare(
      `SELECT ${RECORD_COLUMNS}, vector FROM points WHERE key IN (SELECT value FROM json_each(?))`,
    );
    const where = filterClause(options);
    const itemFilter = options.filter?.item_group !== undefined || options.filter?.brand !== undefined;
    // Disabled items are left out by default, which costs nothing while there are none.
    const anyDisabled =
      !options.includeDisabled &&
      this.db.prepare('SELECT 1 FROM points WHERE collection = ? AND disabled = 1 LIMIT 1').get(name) !== undefined;
    // A selective filter: score exactly the points it keeps (SQL finds them through its indexes).
    let subset: number[] | undefined;
    if (where && itemFilter) {
      const count = this.db
        .prepare(`SELECT COUNT(*) FROM points WHERE collection = ? AND ${where.sql}`)
        .pluck()
        .get(name, ...where.params) as number;
      if (count === 0) return [];
      if (count <= EXACT_SUBSET) {
        subset = this.db
          .prepare(`SELECT key FROM points WHERE collection = ? AND ${where.sql}`)
          .pluck()
          .all(name, ...where.params) as number[];
      }
    }
    const keep = itemFilter || anyDisabled ? (row: PointRow) => matches(row, options) : () => true;
    // Items with many images take several candidates; widen until enough distinct items are found.
    const wanted = Math.min(index.size, Math.max(64, limit * 8));
    for (let breadth = 1; ; breadth *= 4) {
      const candidates = subset
        ? index.searchAmong(query, subset, Math.min(subset.length, wanted * breadth))
        : index.search(query, Math.min(index.size, wanted * breadth), breadth);
      const best = new Map<string, ItemMatch>();
      for (const row of rows.all(JSON.stringify(candidates.map((c) => c.key))) as PointRow[]) {
        if (!keep(row)) continue;
        // Re-score exactly in float32: the index holds int8 codes and the caller sees the true cosine.
        const score = dot(query, toVector(row.vector!));
        const current = best.get(row.item_id);
        if (!current || score > current.score) best.set(row.item_id, { record: toRecord(row), score });
      }
      const exhausted = subset ? candidates.length >= subset.length : index.exhaustive(breadth);
      if (best.size >= limit || exhausted) {
        return [...best.values()].sort((a, b) => b.score - a.score).slice(0, limit);
      }
    }
  }

  async searchCentroids(
    vector: Float32Array,
    kind: ImageKind,
    limit: number,
    options: SearchOptions = {},
  ): Promise<CentroidMatch[]> {
    const { name, dim } = this.store.require(this.name);
    if (limit <= 0) return [];
    const index = await this.store.indexes.current(name, dim, kind);
    if (index.size === 0) return [];
    const query = l2Normalize(Float32Array.from(vector));
    const where = filterClause(options);
    const anyDisabled =
      !options.includeDisabled &&
      this.db.prepare('SELECT 1 FROM points WHERE collection = ? AND disabled = 1 LIMIT 1').get(name) !== undefined;
    const itemFilter = options.filter?.item_group !== undefined || options.filter?.brand !== undefined;
    // With a filter: the centroid rows of the items it keeps (found through the points' indexes).
    let allowed: number[] | undefined;
    if (where && (itemFilter || anyDisabled)) {
      allowed = this.db
        .prepare(
          `SELECT key FROM item_kinds WHERE collection = ? AND kind = ?
             AND item_id IN (SELECT item_id FROM points WHERE collection = ? AND ${where.sql})`,
        )
        .pluck()
        .all(name, kind, name, ...where.params) as number[];
      if (allowed.length === 0) return [];
    }
    const rows = this.db.prepare(
      'SELECT key, item_id, centroid FROM item_kinds WHERE key IN (SELECT value FROM json_each(?))',
    );
    const allowedSet = allowed && allowed.length > EXACT_SUBSET ? new Set(allowed) : undefined;
    const wanted = Math.min(index.size, Math.max(32, limit * 2));
    for (let breadth = 1; ; breadth *= 4) {
      const candidates =
        allowed && !allowedSet
          ? index.searchAmong(query, allowed, wanted * breadth)
          : index.search(query, Math.min(index.size, wanted * breadth), breadth);
      const found: CentroidMatch[] = [];
      for (const row of rows.all(JSON.stringify(candidates.map((c) => c.key))) as Array<{
        key: number;
        item_id: string;
        centroid: Buffer;
      }>) {
        if (allowedSet && !allowedSet.has(row.key)) continue;
        found.push({ item_id: row.item_id, score: dot(query, toVector(row.centroid)) });
      }
      const exhausted = allowed && !allowedSet ? candidates.length >= allowed.length : index.exhaustive(breadth);
      if (found.length >= limit || exhausted) return found.sort((a, b) => b.score - a.score).slice(0, limit);
    }
  }

  async centroidsOf(itemIds: string[]): Promise<KindCentroid[]> {
    const resolved = this.store.resolve(this.name);
    if (!resolved || itemIds.length === 0) return [];
    const rows = this.db
      .prepare(
        `SELECT item_id, kind, count, centroid FROM item_kinds
         WHERE collection = ? AND item_id IN (SELECT value FROM json_each(?))`,
      )
      .all(resolved.name, JSON.stringify(itemIds)) as Array<{
      item_id: string;
      kind: ImageKind;
      count: number;
      centroid: Buffer;
    }>;
    return rows.map((row) => ({
      item_id: row.item_id,
      kind: row.kind,
      count: row.count,
      vector: toVector(row.centroid),
    }));
  }

  async sampleCentroids(kind: ImageKind, limit: number): Promise<Float32Array[]> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return [];
    const rows = this.db
      .prepare('SELECT centroid FROM item_kinds WHERE collection = ? AND kind = ? ORDER BY random() LIMIT ?')
      .pluck()
      .all(resolved.name, kind, limit) as Buffer[];
    return rows.map(toVector);
  }

  async scoreImages(vector: Float32Array, itemIds: string[]): Promise<ItemMatch[]> {
    const resolved = this.store.resolve(this.name);
    if (!resolved || itemIds.length === 0) return [];
    const query = l2Normalize(Float32Array.from(vector));
    const rows = this.db
      .prepare(
        `SELECT ${RECORD_COLUMNS}, vector FROM points
         WHERE collection = ? AND item_id IN (SELECT value FROM json_each(?))`,
      )
      .all(resolved.name, JSON.stringify(itemIds)) as PointRow[];
    const best = new Map<string, ItemMatch>();
    for (const row of rows) {
      const match = { record: toRecord(row), score: dot(query, toVector(row.vector!)) };
      const key = `${match.record.kind}\0${match.record.item_id}`;
      if ((best.get(key)?.score ?? -Infinity) < match.score) best.set(key, match);
    }
    return [...best.values()].sort((a, b) => b.score - a.score);
  }

  async rebuildCentroids(): Promise<number> {
    const { name } = this.store.require(this.name);
    return this.store.rebuildCentroids(name);
  }

  async updateItem(itemId: string, patch: Partial<Omit<ItemFields, 'item_id'>>): Promise<number> {
    const resolved = this.store.resolve(this.name);
    // Column names come from the record schema, never from the caller.
    const columns = Object.keys(patch).filter((key) => key !== 'item_id' && key in ItemFields.properties);
    if (!resolved || columns.length === 0) return 0;
    const values = columns.map((column) => {
      const value = patch[column as keyof typeof patch];
      return typeof value === 'boolean' ? (value ? 1 : 0) : (value ?? null);
    });
    return this.db
      .prepare(`UPDATE points SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE collection = ? AND item_id = ?`)
      .run(...values, resolved.name, itemId).changes;
  }

  async deleteImages(imageIds: string[]): Promise<void> {
    const resolved = this.store.resolve(this.name);
    if (!resolved || imageIds.length === 0) return;
    const find = this.db.prepare('SELECT key, item_id FROM points WHERE collection = ? AND image_id = ?');
    const remove = this.db.prepare('DELETE FROM points WHERE key = ?');
    this.store.write(resolved.name, () => {
      const removed: number[] = [];
      const items: string[] = [];
      for (const imageId of imageIds) {
        const row = find.get(resolved.name, imageId) as { key: number; item_id: string } | undefined;
        if (row === undefined) continue;
        remove.run(row.key);
        removed.push(row.key);
        items.push(row.item_id);
      }
      return { added: [], removed, items };
    });
  }

  async deleteItem(itemId: string): Promise<void> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return;
    this.store.write(resolved.name, () => {
      const keys = this.db
        .prepare('DELETE FROM points WHERE collection = ? AND item_id = ? RETURNING key')
        .pluck()
        .all(resolved.name, itemId) as number[];
      return { added: [], removed: keys, items: [itemId] };
    });
  }

  /** Deletes in batches (each its own transaction, with a pause between): a wipe of 100k points never
   * blocks the event loop for long. The catalog journals the wipe, so a crash in between is finished later. */
  async deleteAll(): Promise<void> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return;
    const batch = this.db.prepare(
      `DELETE FROM points WHERE key IN (SELECT key FROM points WHERE collection = ? LIMIT ${DELETE_BATCH})
         RETURNING key, item_id`,
    );
    for (;;) {
      let removed = 0;
      this.store.write(resolved.name, () => {
        const rows = batch.all(resolved.name) as Array<{ key: number; item_id: string }>;
        removed = rows.length;
        return { added: [], removed: rows.map((row) => row.key), items: rows.map((row) => row.item_id) };
      });
      if (removed < DELETE_BATCH) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
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

  async countItems(): Promise<number> {
    const resolved = this.store.resolve(this.name);
    if (!resolved) return 0;
    // item_kinds has a row per (item, kind) with images, indexed by collection: no scan of the points.
    return this.db
      .prepare('SELECT COUNT(DISTINCT item_id) FROM item_kinds WHERE collection = ?')
      .pluck()
      .get(resolved.name) as number;
  }
}
