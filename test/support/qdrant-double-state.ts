// In-memory collections, aliases and points of the Qdrant test double, with Qdrant's semantics for
// what the project uses: cosine collections with one unnamed dense vector, payload filters (match,
// has_id, is_empty, nested filters), scroll in point-id order, exact grouped nearest-neighbour search,
// and snapshots serialized as the double's own JSON. Anything outside that subset is a DoubleGap: the
// real server would answer, the double cannot, and the test must say so rather than pass.

/** An error answer with Qdrant's status and message. `format` marks requests Qdrant cannot parse. */
export class QdrantError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly format = false,
  ) {
    super(message);
  }
}

/** A valid request the double does not implement. */
export class DoubleGap extends Error {}

export const notFound = (name: string) => new QdrantError(404, `Not found: Collection \`${name}\` doesn't exist!`);
const wrongInput = (text: string) => new QdrantError(400, `Wrong input: ${text}`);
/** A malformed request (what the spec validation also catches when the spec is present). */
export const formatError = (text: string) => new QdrantError(400, `Format error in JSON body: ${text}`, true);

export type PointId = number | string;
type Payload = Record<string, unknown>;

export interface StoredPoint {
  id: PointId;
  vector: Float32Array;
  payload: Payload;
  version: number;
}

interface PreparedPoint {
  key: string;
  id: PointId;
  vector: Float32Array;
  payload: Payload;
}

export interface CollectionState {
  name: string;
  size: number;
  distance: 'Cosine';
  metadata: Payload | undefined;
  points: Map<string, StoredPoint>;
  payloadIndexes: Map<string, unknown>;
  status: 'green' | 'yellow' | 'grey' | 'red';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Canonical key of a point id; throws the parse error Qdrant gives for anything else. */
export function pointKey(id: unknown): string {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return String(id);
  if (typeof id === 'string' && UUID.test(id)) return id.toLowerCase();
  throw formatError(
    `value ${JSON.stringify(id)} is not a valid point ID, valid values are either an unsigned integer or a UUID`,
  );
}

const canonicalId = (id: unknown): PointId => {
  const key = pointKey(id);
  return typeof id === 'number' ? id : key;
};

/** Qdrant's id order: integers first (numerically), then UUIDs (as 128-bit numbers = hex order). */
export function compareIds(a: PointId, b: PointId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function denseVector(value: unknown, size: number): Float32Array {
  if (!Array.isArray(value)) {
    if (value && typeof value === 'object')
      throw new DoubleGap('named or sparse vectors are not implemented by the double');
    throw formatError('Expected some form of vector, id, or a type of query');
  }
  if (!value.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw formatError('vector elements must be numbers');
  if (value.length !== size) throw wrongInput(`Vector dimension error: expected dim: ${size}, got ${value.length}`);
  return Float32Array.from(value as number[]);
}

/** Cosine collections store unit vectors (Qdrant normalizes on upsert and on query). */
function normalize(vector: Float32Array): Float32Array {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const length = Math.sqrt(sum);
  if (length < Number.EPSILON) return vector;
  return vector.map((x) => x / length);
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return Math.fround(sum);
}

// ---- filters ----

type Filter = { must?: unknown; should?: unknown; must_not?: unknown; min_should?: unknown };

const asList = (value: unknown): unknown[] =>
  value === undefined || value === null ? [] : Array.isArray(value) ? value : [value];

function payloadValues(payload: Payload, key: string): unknown[] {
  if (/[.[\]]/.test(key)) throw new DoubleGap(`nested payload keys (${key}) are not implemented by the double`);
  const value = payload[key];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function matchCondition(point: StoredPoint, condition: unknown): boolean {
  if (!condition || typeof condition !== 'object') throw formatError('Expected some form of condition');
  const c = condition as Record<string, unknown>;
  if ('must' in c || 'should' in c || 'must_not' in c || 'min_should' in c) return matchFilter(point, c);
  if ('has_id' in c) return asList(c.has_id).some((id) => pointKey(id) === pointKey(point.id));
  if ('is_empty' in c) {
    const key = (c.is_empty as { key?: unknown })?.key;
    if (typeof key !== 'string') throw formatError('is_empty needs a key');
    return payloadValues(point.payload, key).length === 0;
  }
  if ('is_null' in c) {
    const key = (c.is_null as { key?: unknown })?.key;
    if (typeof key !== 'string') throw formatError('is_null needs a key');
    return point.payload[key] === null;
  }
  if (typeof c.key !== 'string') throw formatError('Expected some form of condition');
  const values = payloadValues(point.payload, c.key);
  const match = c.match as Record<string, unknown> | undefined | null;
  const others = Object.keys(c).filter((k) => k !== 'key' && k !== 'match' && c[k] !== null && c[k] !== undefined);
  if (others.length > 0 || !match)
    throw new DoubleGap(`field condition ${JSON.stringify(Object.keys(c))} is not implemented by the double`);
  if ('value' in match) return values.some((v) => v === match.value);
  if ('any' in match) return values.some((v) => (match.any as unknown[]).includes(v));
  if ('except' in match) return values.length > 0 && values.every((v) => !(match.except as unknown[]).includes(v));
  throw new DoubleGap(`match ${JSON.stringify(match)} is not implemented by the double`);
}

export function matchFilter(point: StoredPoint, filter: Filter | null | undefined): boolean {
  if (!filter) return true;
  if (filter.min_should !== undefined && filter.min_should !== null)
    throw new DoubleGap('min_should is not implemented by the double');
  const should = asList(filter.should);
  return (
    asList(filter.must).every((c) => matchCondition(point, c)) &&
    (should.length === 0 || should.some((c) => matchCondition(point, c))) &&
    !asList(filter.must_not).some((c) => matchCondition(point, c))
  );
}

// ---- response shapes ----

function selectPayload(payload: Payload, selector: unknown, byDefault: boolean): Payload | undefined {
  const which = selector === undefined || selector === null ? byDefault : selector;
  if (which === true) return { ...payload };
  if (which === false) return undefined;
  const pick = (keys: unknown[], keep: boolean) =>
    Object.fromEntries(Object.entries(payload).filter(([key]) => keys.includes(key) === keep));
  if (Array.isArray(which)) return pick(which, true);
  const object = which as { include?: unknown[]; exclude?: unknown[] };
  if (Array.isArray(object.include)) return pick(object.include, true);
  if (Array.isArray(object.exclude)) return pick(object.exclude, false);
  throw formatError('invalid with_payload');
}

function withVector(point: StoredPoint, selector: unknown): number[] | undefined {
  if (selector === undefined || selector === null || selector === false) return undefined;
  if (selector === true) return Array.from(point.vector);
  throw new DoubleGap('selecting named vectors is not implemented by the double');
}

export function recordOf(
  point: StoredPoint,
  payloadSelector: unknown,
  vectorSelector: unknown,
  payloadByDefault = true,
) {
  const payload = selectPayload(point.payload, payloadSelector, payloadByDefault);
  const vector = withVector(point, vectorSelector);
  return { id: point.id, ...(payload ? { payload } : {}), ...(vector ? { vector } : {}) };
}

// ---- snapshots ----

const SNAPSHOT_FORMAT = 'qdrant-double-snapshot/1';

interface SerializedCollection {
  name: string;
  size: number;
  distance: 'Cosine';
  metadata: Payload | null;
  payloadIndexes: Array<[string, unknown]>;
  points: Array<{ id: PointId; vector: number[]; payload: Payload }>;
}

function serializeCollection(c: CollectionState): SerializedCollection {
  return {
    name: c.name,
    size: c.size,
    distance: c.distance,
    metadata: c.metadata ?? null,
    payloadIndexes: [...c.payloadIndexes],
    points: [...c.points.values()]
      .sort((a, b) => compareIds(a.id, b.id))
      .map((p) => ({ id: p.id, vector: Array.from(p.vector), payload: p.payload })),
  };
}

function deserializeCollection(name: string, s: SerializedCollection): CollectionState {
  return {
    name,
    size: s.size,
    distance: s.distance,
    metadata: s.metadata ?? undefined,
    payloadIndexes: new Map(s.payloadIndexes),
    points: new Map(
      s.points.map((p) => [
        pointKey(p.id),
        { id: p.id, vector: Float32Array.from(p.vector), payload: p.payload, version: 0 },
      ]),
    ),
    status: 'green',
  };
}

function parseSnapshot(bytes: Buffer, kind: 'collection' | 'full'): Record<string, unknown> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw wrongInput('the snapshot is not a valid snapshot archive');
  }
  if (parsed.format !== SNAPSHOT_FORMAT || parsed.kind !== kind) throw wrongInput(`the file is not a ${kind} snapshot`);
  return parsed;
}

// ---- the state ----

export class DoubleState {
  readonly collections = new Map<string, CollectionState>();
  readonly aliases = new Map<string, string>();
  private version = 0;

  /** The collection a name addresses (aliases resolved), or 404 like Qdrant. */
  resolve(name: string): CollectionState {
    const collection = this.collections.get(this.aliases.get(name) ?? name);
    if (!collection) throw notFound(name);
    return collection;
  }

  createCollection(name: string, body: Record<string, unknown>): void {
    if (this.collections.has(name)) throw wrongInput(`Collection \`${name}\` already exists!`);
    if (this.aliases.has(name))
      throw wrongInput(`Can't create collection with name ${name}. Alias with the same name already exists`);
    const vectors = body.vectors as Record<string, unknown> | undefined;
    if (!vectors || typeof vectors !== 'object') throw formatError('missing field `vectors`');
    if (!('size' in vectors)) throw new DoubleGap('named vectors are not implemented by the double');
    if (!Number.isInteger(vectors.size) || (vectors.size as number) < 1)
      throw formatError('vectors.size must be a positive integer');
    if (vectors.distance !== 'Cosine') {
      if (['Euclid', 'Dot', 'Manhattan'].includes(String(vectors.distance)))
        throw new DoubleGap(`distance ${String(vectors.distance)} is not implemented by the double`);
      throw formatError(
        `unknown variant \`${String(vectors.distance)}\`, expected one of \`Cosine\`, \`Euclid\`, \`Dot\`, ` +
          `\`Manhattan\``,
      );
    }
    for (const key of ['sparse_vectors', 'sharding_method', 'quantization_config']) {
      if (body[key] !== undefined && body[key] !== null) throw new DoubleGap(`${key} is not implemented by the double`);
    }
    const metadata = body.metadata;
    if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata)))
      throw formatError('metadata must be an object');
    this.collections.set(name, {
      name,
      size: vectors.size as number,
      distance: 'Cosine',
      metadata: (metadata ?? undefined) as Payload | undefined,
      points: new Map(),
      payloadIndexes: new Map(),
      status: 'green',
    });
  }

  deleteCollection(name: string): boolean {
    // Like Qdrant: the name is taken literally (not as an alias), and its aliases go with it.
    if (!this.collections.delete(name)) return false;
    for (const [alias, target] of this.aliases) if (target === name) this.aliases.delete(alias);
    return true;
  }

  /**
   * Applies alias actions in order, as Qdrant 1.18 does (ToC::update_aliases): readers never see a
   * half-applied list, but when an action fails the ones before it stay applied.
   */
  updateAliases(actions: unknown): void {
    if (!Array.isArray(actions)) throw formatError('missing field `actions`');
    for (const action of actions as Array<Record<string, Record<string, unknown>>>) {
      if (action.create_alias) {
        const { collection_name, alias_name } = action.create_alias;
        if (typeof collection_name !== 'string' || typeof alias_name !== 'string')
          throw formatError('create_alias needs collection_name and alias_name');
        if (!this.collections.has(collection_name)) throw notFound(collection_name);
        if (this.collections.has(alias_name)) throw wrongInput(`Collection \`${alias_name}\` already exists!`);
        this.aliases.set(alias_name, collection_name);
      } else if (action.delete_alias) {
        const { alias_name } = action.delete_alias;
        if (typeof alias_name !== 'string') throw formatError('delete_alias needs alias_name');
        this.aliases.delete(alias_name);
      } else if (action.rename_alias) {
        const { old_alias_name, new_alias_name } = action.rename_alias;
        if (typeof old_alias_name !== 'string' || typeof new_alias_name !== 'string')
          throw formatError('rename_alias needs old_alias_name and new_alias_name');
        const target = this.aliases.get(old_alias_name);
        if (target === undefined) throw new QdrantError(404, `Not found: Alias ${old_alias_name} does not exists!`);
        this.aliases.delete(old_alias_name);
        this.aliases.set(new_alias_name, target);
      } else {
        throw formatError('data did not match any variant of untagged enum AliasOperations');
      }
    }
  }

  aliasesOf(collection?: string): Array<{ alias_name: string; collection_name: string }> {
    return [...this.aliases]
      .filter(([, target]) => collection === undefined || target === collection)
      .map(([alias_name, collection_name]) => ({ alias_name, collection_name }));
  }

  createPayloadIndex(c: CollectionState, body: Record<string, unknown>): void {
    if (typeof body.field_name !== 'string') throw formatError('missing field `field_name`');
    c.payloadIndexes.set(body.field_name, body.field_schema ?? null);
  }

  /** Checks an upsert request completely (one bad point fails it all) and returns its points. */
  preparePoints(c: CollectionState, body: Record<string, unknown>): PreparedPoint[] {
    for (const key of ['update_filter', 'update_mode', 'shard_key']) {
      if (body[key] !== undefined && body[key] !== null) throw new DoubleGap(`${key} is not implemented by the double`);
    }
    let points: Array<{ id: unknown; vector: unknown; payload?: unknown }>;
    if (Array.isArray(body.points)) {
      points = body.points as typeof points;
    } else if (body.batch && typeof body.batch === 'object') {
      const batch = body.batch as { ids?: unknown[]; vectors?: unknown[]; payloads?: unknown[] | null };
      if (!Array.isArray(batch.ids) || !Array.isArray(batch.vectors) || batch.ids.length !== batch.vectors.length) {
        throw formatError('batch needs ids and vectors of the same length');
      }
      points = batch.ids.map((id, i) => ({ id, vector: batch.vectors![i], payload: batch.payloads?.[i] }));
    } else {
      throw formatError('missing field `points`');
    }
    return points.map((point) => {
      if (!point || typeof point !== 'object' || point.id === undefined) throw formatError('missing field `id`');
      if (point.vector === undefined) throw formatError('missing field `vector`');
      const payload = point.payload ?? {};
      if (typeof payload !== 'object' || Array.isArray(payload)) throw formatError('payload must be an object');
      return {
        key: pointKey(point.id),
        id: canonicalId(point.id),
        vector: normalize(denseVector(point.vector, c.size)),
        payload: structuredClone(payload as Payload),
      };
    });
  }

  upsert(c: CollectionState, points: PreparedPoint[]): void {
    const version = ++this.version;
    for (const p of points) c.points.set(p.key, { id: p.id, vector: p.vector, payload: p.payload, version });
  }

  /** Points chosen by a PointsSelector: `points` (ids) or `filter`. */
  select(c: CollectionState, body: Record<string, unknown>): StoredPoint[] {
    if (body.shard_key !== undefined && body.shard_key !== null)
      throw new DoubleGap('shard_key is not implemented by the double');
    if (Array.isArray(body.points)) {
      return body.points.map((id) => c.points.get(pointKey(id))).filter((p): p is StoredPoint => p !== undefined);
    }
    if (body.filter && typeof body.filter === 'object')
      return [...c.points.values()].filter((p) => matchFilter(p, body.filter as Filter));
    throw formatError('expected `points` or `filter`');
  }

  deletePoints(c: CollectionState, body: Record<string, unknown>): void {
    for (const point of this.select(c, body)) c.points.delete(pointKey(point.id));
    this.version++;
  }

  setPayload(c: CollectionState, body: Record<string, unknown>, overwrite: boolean): void {
    if (body.key !== undefined && body.key !== null)
      throw new DoubleGap('set_payload with `key` is not implemented by the double');
    const payload = body.payload;
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw formatError('missing field `payload`');
    const version = ++this.version;
    for (const point of this.select(c, body)) {
      point.payload = overwrite
        ? structuredClone(payload as Payload)
        : { ...point.payload, ...structuredClone(payload as Payload) };
      point.version = version;
    }
  }

  retrieve(c: CollectionState, body: Record<string, unknown>) {
    if (!Array.isArray(body.ids)) throw formatError('missing field `ids`');
    const seen = new Set<string>();
    const records = [];
    for (const id of body.ids) {
      const key = pointKey(id);
      const point = c.points.get(key);
      if (!point || seen.has(key)) continue;
      seen.add(key);
      records.push(recordOf(point, body.with_payload, body.with_vector));
    }
    return records;
  }

  scroll(c: CollectionState, body: Record<string, unknown>) {
    if (body.order_by !== undefined && body.order_by !== null)
      throw new DoubleGap('scroll order_by is not implemented by the double');
    const limit = (body.limit as number | undefined | null) ?? 10;
    const ordered = [...c.points.values()]
      .filter((p) => matchFilter(p, body.filter as Filter))
      .sort((a, b) => compareIds(a.id, b.id));
    const offset = body.offset === undefined || body.offset === null ? undefined : canonicalId(body.offset);
    const start = offset === undefined ? 0 : ordered.findIndex((p) => compareIds(p.id, offset) >= 0);
    const from = start < 0 ? ordered.length : start;
    const page = ordered.slice(from, from + limit);
    const next = ordered[from + limit];
    return {
      points: page.map((p) => recordOf(p, body.with_payload, body.with_vector)),
      next_page_offset: next ? next.id : null,
    };
  }

  count(c: CollectionState, body: Record<string, unknown>): number {
    return [...c.points.values()].filter((p) => matchFilter(p, body.filter as Filter)).length;
  }

  /** Every point the body's filter and score_threshold keep, with its cosine to `vector`: best first, ties by id. */
  private ranked(c: CollectionState, body: Record<string, unknown>, vector: unknown) {
    const threshold = body.score_threshold as number | undefined | null;
    const query = normalize(denseVector(vector, c.size));
    return [...c.points.values()]
      .filter((p) => matchFilter(p, body.filter as Filter))
      .map((point) => ({ point, score: dot(query, point.vector) }))
      .filter(({ score }) => threshold === undefined || threshold === null || score >= threshold)
      .sort((a, b) => b.score - a.score || compareIds(a.point.id, b.point.id));
  }

  /** Exact nearest-neighbour query (POST .../points/query with a plain vector): points by score, ties by id. */
  query(c: CollectionState, body: Record<string, unknown>, vector: unknown) {
    for (const key of ['prefetch', 'using', 'lookup_from', 'shard_key', 'params']) {
      if (body[key] !== undefined && body[key] !== null) throw new DoubleGap(`${key} is not implemented by the double`);
    }
    const limit = (body.limit as number | undefined | null) ?? 10;
    const offset = (body.offset as number | undefined | null) ?? 0;
    if (!Number.isInteger(limit) || limit < 1) throw formatError('limit: value must be at least 1');
    if (!Number.isInteger(offset) || offset < 0) throw formatError('offset: value must be a non-negative integer');
    const points = this.ranked(c, body, vector).slice(offset, offset + limit);
    return {
      points: points.map(({ point, score }) => ({
        ...recordOf(point, body.with_payload, body.with_vector, false),
        version: point.version,
        score,
      })),
    };
  }

  /** Exact grouped nearest-neighbour search: groups ordered by their best hit, hits by score. */
  groups(c: CollectionState, body: Record<string, unknown>, vector: unknown) {
    for (const key of ['prefetch', 'using', 'lookup_from', 'with_lookup', 'shard_key', 'params']) {
      if (body[key] !== undefined && body[key] !== null) throw new DoubleGap(`${key} is not implemented by the double`);
    }
    if (typeof body.group_by !== 'string') throw formatError('missing field `group_by`');
    const groupSize = (body.group_size as number | undefined | null) ?? 3;
    const limit = (body.limit as number | undefined | null) ?? 10;
    const scored = this.ranked(c, body, vector);
    const groups = new Map<string | number, Array<{ point: StoredPoint; score: number }>>();
    for (const hit of scored) {
      for (const value of payloadValues(hit.point.payload, body.group_by)) {
        if (typeof value !== 'string' && !Number.isInteger(value)) continue;
        const hits = groups.get(value as string | number) ?? [];
        if (!groups.has(value as string | number)) {
          if (groups.size >= limit) continue;
          groups.set(value as string | number, hits);
        }
        if (hits.length < groupSize) hits.push(hit);
      }
    }
    return {
      groups: [...groups].map(([id, hits]) => ({
        id,
        hits: hits.map(({ point, score }) => ({
          ...recordOf(point, body.with_payload, body.with_vector, false),
          version: point.version,
          score,
        })),
      })),
    };
  }

  /** The `result` of GET /collections/{name}, shaped like Qdrant 1.18's CollectionInfo. */
  info(c: CollectionState) {
    const points = c.points.size;
    const payloadSchema = Object.fromEntries(
      [...c.payloadIndexes].map(([field, schema]) => {
        const type = typeof schema === 'string' ? schema : ((schema as { type?: string } | null)?.type ?? 'keyword');
        const indexed = [...c.points.values()].filter((p) => payloadValues(p.payload, field).length > 0).length;
        return [
          field,
          { data_type: type, ...(schema && typeof schema === 'object' ? { params: schema } : {}), points: indexed },
        ];
      }),
    );
    return {
      status: c.status,
      optimizer_status: 'ok',
      indexed_vectors_count: 0,
      points_count: points,
      segments_count: 1,
      config: {
        params: {
          vectors: { size: c.size, distance: c.distance },
          shard_number: 1,
          replication_factor: 1,
          write_consistency_factor: 1,
          on_disk_payload: true,
        },
        hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
        optimizer_config: {
          deleted_threshold: 0.2,
          vacuum_min_vector_number: 1000,
          default_segment_number: 0,
          max_segment_size: null,
          memmap_threshold: null,
          indexing_threshold: 10000,
          flush_interval_sec: 5,
          max_optimization_threads: null,
        },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
        quantization_config: null,
        strict_mode_config: { enabled: false },
        ...(c.metadata ? { metadata: c.metadata } : {}),
      },
      payload_schema: payloadSchema,
    };
  }

  collectionSnapshot(c: CollectionState): Buffer {
    return Buffer.from(
      JSON.stringify({ format: SNAPSHOT_FORMAT, kind: 'collection', collection: serializeCollection(c) }),
    );
  }

  fullSnapshot(): Buffer {
    const collections = [...this.collections.values()].map(serializeCollection);
    return Buffer.from(
      JSON.stringify({ format: SNAPSHOT_FORMAT, kind: 'full', collections, aliases: Object.fromEntries(this.aliases) }),
    );
  }

  /** Replaces (or creates) `name` with the snapshot's contents; aliases pointing at `name` stay. */
  recoverCollection(name: string, bytes: Buffer): void {
    const parsed = parseSnapshot(bytes, 'collection');
    if (this.aliases.has(name))
      throw wrongInput(`Can't create collection with name ${name}. Alias with the same name already exists`);
    this.collections.set(name, deserializeCollection(name, parsed.collection as SerializedCollection));
  }

  /** What starting Qdrant with --storage-snapshot does: the whole storage becomes the snapshot's. */
  recoverFull(bytes: Buffer): void {
    const parsed = parseSnapshot(bytes, 'full');
    this.collections.clear();
    this.aliases.clear();
    for (const s of parsed.collections as SerializedCollection[])
      this.collections.set(s.name, deserializeCollection(s.name, s));
    for (const [alias, target] of Object.entries(parsed.aliases as Record<string, string>))
      this.aliases.set(alias, target);
  }
}
