// The embedded store's nearest-neighbour index: an inverted-file index (IVF) over int8 codes, in plain
// TypeScript with a WebAssembly SIMD inner loop. It is derived data (SQLite holds the true float32
// vectors, which re-score every answer), so it only has to find good candidates quickly.
//
// Why this shape: vectors are clustered around cluster centres (spherical k-means); a search scores the
// centres, then scans the members of the closest few clusters. A delete removes a vector from its
// cluster's member list in O(1) and frees its slot, so add/delete churn can neither slow the index down
// nor bring a removed vector back (the usearch HNSW graph it replaces hung in its `remove` after some
// thousand add/remove cycles). Below `trainAt` vectors there is one cluster, i.e. an exact int8 scan.
//
// Nothing here blocks the event loop for long: add, remove and search touch at most a few clusters, and
// (re)training, the one long job, runs in slices between which the index keeps serving.
import { instantiateKernel, WASM_PAGE, type KernelExports } from './kernel.js';

export interface VectorIndexOptions {
  dim: number;
  /** Vectors needed before the index clusters them (default 20,000); below, every search is exact. */
  trainAt?: number;
  /** Share of clusters scanned per search (default 0.05), at least `minProbe` (default 8). */
  probeFraction?: number;
  minProbe?: number;
  /** Pause between training slices; the default yields to the event loop (setImmediate). */
  pause?: () => Promise<void>;
}

export interface Candidate {
  key: number;
  /** Approximate cosine from the int8 codes (within about 0.01 of the exact one). */
  score: number;
}

/** The persistent form of an index (checkpoint.ts writes and reads it). */
export interface IndexSnapshot {
  dim: number;
  trainedAt: number;
  centroidCodes: Int8Array;
  centroidScales: Float32Array;
  keys: Float64Array;
  scales: Float32Array;
  lists: Int32Array;
  codes: Int8Array;
}

/** Scans are done in batches of this many slots (the kernel's scratch buffers). */
const BATCH = 4096;
const MAX_LISTS = 4096;
/** Training looks at most this many vectors per cluster. */
const SAMPLE_PER_LIST = 32;
const TRAIN_ITERATIONS = 6;
/** Vectors assigned or sampled between two pauses of a training job (about 5-10 ms of work). */
const SLICE = 256;

const roundUp = (value: number, multiple: number) => Math.ceil(value / multiple) * multiple;
/** Bytes per int8 code: dim rounded up to the kernel's 16-byte lanes (the padding stays zero). */
export const codeWidth = (dim: number) => roundUp(dim, 16);
const setImmediatePause = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Clusters: centroid codes in kernel memory at `at`, member slots per cluster. */
interface Clustering {
  at: number;
  count: number;
  scales: Float32Array;
  members: Int32Array[];
  sizes: Int32Array;
  /** Cluster of each slot (-1: none) and its position among the members. */
  listOf: Int32Array;
  posInList: Int32Array;
}

export class VectorIndex {
  readonly dim: number;
  /** Bytes per int8 code: dim rounded up to the kernel's 16-byte lanes (padding stays zero). */
  private readonly width: number;
  private readonly kernel: KernelExports;
  private readonly trainAt: number;
  private readonly probeFraction: number;
  private readonly minProbe: number;
  private readonly pause: () => Promise<void>;

  // Kernel memory layout: query code | slot batch | score batch | identity slots | 2 centroid regions | codes.
  private readonly queryAt = 0;
  private readonly slotsAt: number;
  private readonly outAt: number;
  private readonly identityAt: number;
  private readonly centroidRegions: [number, number];
  private readonly codesAt: number;
  private capacity = 0;

  private keys = new Float64Array(0);
  private scales = new Float32Array(0);
  private readonly slotOf = new Map<number, number>();
  private readonly freeSlots: number[] = [];
  private highWater = 0;

  private active: Clustering;
  /** A new clustering being trained and filled in the background; writes go to both until it takes over. */
  private pending?: Clustering;
  private training?: Promise<void>;
  private trainedAtSize = 0;
  /** Bumped by clear(): a training job that started before gives up. */
  private generation = 0;

  constructor(options: VectorIndexOptions) {
    this.dim = options.dim;
    this.width = codeWidth(options.dim);
    this.trainAt = options.trainAt ?? 20_000;
    this.probeFraction = options.probeFraction ?? 0.05;
    this.minProbe = options.minProbe ?? 8;
    this.pause = options.pause ?? setImmediatePause;
    this.kernel = instantiateKernel();
    this.slotsAt = roundUp(this.width, 16);
    this.outAt = this.slotsAt + BATCH * 4;
    this.identityAt = this.outAt + BATCH * 4;
    const centroidsAt = this.identityAt + MAX_LISTS * 4;
    this.centroidRegions = [centroidsAt, centroidsAt + MAX_LISTS * this.width];
    this.codesAt = roundUp(centroidsAt + 2 * MAX_LISTS * this.width, 16);
    this.ensureCapacity(1024);
    new Int32Array(this.kernel.memory.buffer, this.identityAt, MAX_LISTS).set(
      Int32Array.from({ length: MAX_LISTS }, (_, i) => i),
    );
    this.active = this.emptyClustering(this.centroidRegions[0], 1);
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Clusters in use (1 = exact scan). */
  get clusters(): number {
    return this.active.count;
  }

  has(key: number): boolean {
    return this.slotOf.has(key);
  }

  /** Inserts (or replaces) the vector of `key`; the vector should be unit length. */
  add(key: number, vector: Float32Array): void {
    if (vector.length !== this.dim) throw new Error(`Vector width ${vector.length} is not ${this.dim}.`);
    if (this.slotOf.has(key)) this.remove(key);
    const slot = this.freeSlots.pop() ?? this.highWater++;
    this.ensureCapacity(slot + 1);
    this.scales[slot] = this.quantize(vector, this.codeAt(slot));
    this.keys[slot] = key;
    this.slotOf.set(key, slot);
    this.assign(this.active, slot);
    if (this.pending) this.assign(this.pending, slot);
  }

  /** Removes `key`; false when it was not there. Its slot is reused by a later add. */
  remove(key: number): boolean {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return false;
    this.unassign(this.active, slot);
    if (this.pending) this.unassign(this.pending, slot);
    this.slotOf.delete(key);
    this.freeSlots.push(slot);
    return true;
  }

  clear(): void {
    this.slotOf.clear();
    this.freeSlots.length = 0;
    this.highWater = 0;
    this.pending = undefined;
    this.trainedAtSize = 0;
    this.generation++;
    this.active = this.emptyClustering(this.centroidRegions[0], 1);
  }

  /**
   * The `k` best candidates by approximate cosine, best first. `breadth` multiplies the clusters scanned
   * (a caller that found too few distinct items asks again wider; large enough, the scan is exact).
   */
  search(query: Float32Array, k: number, breadth = 1): Candidate[] {
    if (this.size === 0 || k <= 0) return [];
    const queryScale = this.quantize(query, this.queryAt);
    const { active } = this;
    let lists: number[];
    if (active.count === 1) {
      lists = [0];
    } else {
      const probe = Math.min(active.count, breadth * this.probeBase());
      const dots = this.scanSlots(this.identityAt, active.count, active.at);
      const centres = new TopK(probe);
      for (let c = 0; c < active.count; c++) centres.offer(c, dots[c] * active.scales[c]);
      lists = centres.sorted().map(({ slot }) => slot);
    }
    const heap = new TopK(k);
    for (const list of lists) this.scanInto(heap, active.members[list], active.sizes[list], queryScale);
    return heap.sorted().map(({ slot, score }) => ({ key: this.keys[slot], score }));
  }

  /** True when a search of this breadth scans every vector. */
  exhaustive(breadth: number): boolean {
    return this.active.count === 1 || breadth * this.probeBase() >= this.active.count;
  }

  private probeBase(): number {
    return Math.max(this.minProbe, Math.ceil(this.active.count * this.probeFraction));
  }

  /** The `k` best among `keys` only (keys not in the index are ignored): exact over the subset. */
  searchAmong(query: Float32Array, keys: Iterable<number>, k: number): Candidate[] {
    if (k <= 0) return [];
    const slots: number[] = [];
    for (const key of keys) {
      const slot = this.slotOf.get(key);
      if (slot !== undefined) slots.push(slot);
    }
    if (slots.length === 0) return [];
    const queryScale = this.quantize(query, this.queryAt);
    const heap = new TopK(k);
    this.scanInto(heap, Int32Array.from(slots), slots.length, queryScale);
    return heap.sorted().map(({ slot, score }) => ({ key: this.keys[slot], score }));
  }

  /** True when the index has grown (or shrunk) enough that its clusters should be retrained. */
  needsTraining(): boolean {
    if (this.training) return false;
    const size = this.size;
    if (this.active.count === 1) return size >= this.trainAt;
    return size >= 4 * this.trainedAtSize || size < this.trainAt / 2;
  }

  /**
   * Trains new clusters on a sample and re-assigns every vector to them, in slices; the current clusters
   * keep answering searches meanwhile, and adds and removes reach both. Returns when the new clusters are
   * in use. Concurrent calls share one job.
   */
  train(): Promise<void> {
    this.training ??= this.runTraining().finally(() => (this.training = undefined));
    return this.training;
  }

  private async runTraining(): Promise<void> {
    const generation = this.generation;
    const size = this.size;
    if (size < this.trainAt / 2) {
      // Too small to cluster: fall back to one cluster (exact scans).
      this.pending = undefined;
      const single = this.emptyClustering(this.idleRegion(), 1);
      for (const slot of this.slotOf.values()) this.assign(single, slot);
      this.active = single;
      this.trainedAtSize = 0;
      return;
    }
    const count = Math.min(MAX_LISTS, Math.max(16, Math.round(2 * Math.sqrt(size))));
    const pending = this.emptyClustering(this.idleRegion(), count);
    const sample = this.sampleSlots(Math.min(size, count * SAMPLE_PER_LIST));
    // Seeds: evenly spaced members of the (shuffled) sample.
    for (let c = 0; c < count; c++) this.copyCode(sample[Math.floor((c * sample.length) / count)], pending, c);
    const sums = new Float32Array(count * this.dim);
    const counts = new Int32Array(count);
    for (let iteration = 0; iteration < TRAIN_ITERATIONS; iteration++) {
      sums.fill(0);
      counts.fill(0);
      for (let start = 0; start < sample.length; start += SLICE) {
        for (let i = start; i < Math.min(sample.length, start + SLICE); i++) {
          const slot = sample[i];
          if (!this.isLive(slot)) continue; // removed while training
          const best = this.nearest(pending, this.codeAt(slot));
          counts[best]++;
          this.accumulate(sums, best, slot);
        }
        await this.pause();
        if (this.generation !== generation) return; // cleared meanwhile
      }
      for (let c = 0; c < count; c++) {
        if (counts[c] === 0) {
          // An empty cluster takes a random live vector as its new centre.
          const live = sample.filter((slot) => this.isLive(slot));
          if (live.length > 0) this.copyCode(live[(c * 7919) % live.length], pending, c);
          continue;
        }
        const row = sums.subarray(c * this.dim, (c + 1) * this.dim);
        normalize(row);
        pending.scales[c] = this.quantize(row, pending.at + c * this.width);
      }
    }
    // Fill the new clusters while the old ones serve; add() and remove() keep both in step meanwhile.
    pending.listOf = resized(pending.listOf, this.capacity, -1);
    pending.posInList = resized(pending.posInList, this.capacity, 0);
    this.pending = pending;
    const slots = [...this.slotOf.values()];
    for (let start = 0; start < slots.length; start += SLICE * 4) {
      if (this.pending !== pending) return; // cleared meanwhile
      for (let i = start; i < Math.min(slots.length, start + SLICE * 4); i++) {
        const slot = slots[i];
        if (this.isLive(slot) && pending.listOf[slot] === -1) this.assign(pending, slot);
      }
      await this.pause();
    }
    if (this.pending !== pending) return;
    this.active = pending;
    this.pending = undefined;
    this.trainedAtSize = this.size;
  }

  /** A copy of the live vectors (slots renumbered densely) for a checkpoint. */
  snapshot(): IndexSnapshot {
    const live = [...this.slotOf.values()].sort((a, b) => a - b);
    const { active } = this;
    const memory = new Int8Array(this.kernel.memory.buffer);
    const codes = new Int8Array(live.length * this.width);
    const keys = new Float64Array(live.length);
    const scales = new Float32Array(live.length);
    const lists = new Int32Array(live.length);
    live.forEach((slot, i) => {
      const at = this.codeAt(slot);
      codes.set(memory.subarray(at, at + this.width), i * this.width);
      keys[i] = this.keys[slot]!;
      scales[i] = this.scales[slot]!;
      lists[i] = active.listOf[slot]!;
    });
    return {
      dim: this.dim,
      trainedAt: this.trainedAtSize,
      centroidCodes: memory.slice(active.at, active.at + active.count * this.width),
      centroidScales: active.scales.slice(0, active.count),
      keys,
      scales,
      lists,
      codes,
    };
  }

  /** Rebuilds an index from a snapshot (already verified by the caller); throws on inconsistent data. */
  static fromSnapshot(snapshot: IndexSnapshot, options: Omit<VectorIndexOptions, 'dim'> = {}): VectorIndex {
    const index = new VectorIndex({ ...options, dim: snapshot.dim });
    const clusters = snapshot.centroidScales.length;
    const count = snapshot.keys.length;
    if (clusters < 1 || clusters > MAX_LISTS) throw new Error(`bad cluster count ${clusters}`);
    if (snapshot.centroidCodes.length !== clusters * index.width) throw new Error('bad centroid section');
    if (snapshot.codes.length !== count * index.width) throw new Error('bad code section');
    if (snapshot.scales.length !== count || snapshot.lists.length !== count) throw new Error('bad vector section');
    index.ensureCapacity(count);
    const memory = new Int8Array(index.kernel.memory.buffer);
    const clustering = index.emptyClustering(index.centroidRegions[0], clusters);
    memory.set(snapshot.centroidCodes, clustering.at);
    clustering.scales.set(snapshot.centroidScales);
    memory.set(snapshot.codes, index.codesAt);
    index.active = clustering;
    for (let slot = 0; slot < count; slot++) {
      const key = snapshot.keys[slot];
      const list = snapshot.lists[slot];
      if (!Number.isSafeInteger(key) || index.slotOf.has(key)) throw new Error(`bad or repeated key ${key}`);
      if (!(list >= 0 && list < clusters)) throw new Error(`bad cluster ${list} of key ${key}`);
      index.keys[slot] = key;
      index.scales[slot] = snapshot.scales[slot]!;
      index.slotOf.set(key, slot);
      index.append(clustering, list, slot);
    }
    index.highWater = count;
    index.trainedAtSize = snapshot.trainedAt;
    return index;
  }

  // ---- internals ----

  private emptyClustering(at: number, count: number): Clustering {
    const slots = this.keys.length;
    return {
      at,
      count,
      scales: new Float32Array(MAX_LISTS).fill(count === 1 ? 1 : 0),
      members: Array.from({ length: count }, () => new Int32Array(16)),
      sizes: new Int32Array(count),
      listOf: new Int32Array(slots).fill(-1),
      posInList: new Int32Array(slots),
    };
  }

  /** The centroid region the active clustering does not use. */
  private idleRegion(): number {
    return this.active.at === this.centroidRegions[0] ? this.centroidRegions[1] : this.centroidRegions[0];
  }

  private codeAt(slot: number): number {
    return this.codesAt + slot * this.width;
  }

  private isLive(slot: number): boolean {
    return this.slotOf.get(this.keys[slot]) === slot;
  }

  /** Grows the kernel memory and the per-slot arrays to hold at least `slots` vectors. */
  private ensureCapacity(slots: number): void {
    if (slots <= this.capacity) return;
    const target = Math.max(slots, Math.ceil(this.capacity * 1.5), 1024);
    const needBytes = this.codesAt + target * this.width;
    const memory = this.kernel.memory;
    if (needBytes > memory.buffer.byteLength) {
      memory.grow(Math.ceil((needBytes - memory.buffer.byteLength) / WASM_PAGE));
    }
    const keys = new Float64Array(target);
    keys.set(this.keys);
    this.keys = keys;
    const scales = new Float32Array(target);
    scales.set(this.scales);
    this.scales = scales;
    for (const clustering of [this.active, this.pending]) {
      if (!clustering) continue;
      clustering.listOf = resized(clustering.listOf, target, -1);
      clustering.posInList = resized(clustering.posInList, target, 0);
    }
    this.capacity = target;
  }

  /** Writes the int8 code of `vector` at byte `at` of kernel memory; returns its scale. */
  private quantize(vector: Float32Array, at: number): number {
    let max = 0;
    for (let i = 0; i < vector.length; i++) max = Math.max(max, Math.abs(vector[i]));
    const scale = max > 0 ? max / 127 : 1;
    const code = new Int8Array(this.kernel.memory.buffer, at, this.width);
    for (let i = 0; i < vector.length; i++) code[i] = Math.round(vector[i] / scale);
    code.fill(0, vector.length);
    return scale;
  }

  private copyCode(slot: number, clustering: Clustering, cluster: number): void {
    const memory = new Int8Array(this.kernel.memory.buffer);
    const from = this.codeAt(slot);
    memory.copyWithin(clustering.at + cluster * this.width, from, from + this.width);
    clustering.scales[cluster] = this.scales[slot]!;
  }

  /** The nearest centre of `clustering` to the code at byte `codeAt`. */
  private nearest(clustering: Clustering, codeAt: number): number {
    if (clustering.count === 1) return 0;
    this.kernel.scan_i8(codeAt, clustering.at, this.identityAt, clustering.count, this.width, this.outAt);
    const out = new Int32Array(this.kernel.memory.buffer, this.outAt, clustering.count);
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < clustering.count; c++) {
      const score = out[c] * clustering.scales[c];
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    return best;
  }

  private assign(clustering: Clustering, slot: number): void {
    this.append(clustering, this.nearest(clustering, this.codeAt(slot)), slot);
  }

  private append(clustering: Clustering, list: number, slot: number): void {
    let members = clustering.members[list];
    const size = clustering.sizes[list];
    if (size === members.length) {
      const grown = new Int32Array(members.length * 2);
      grown.set(members);
      members = clustering.members[list] = grown;
    }
    members[size] = slot;
    clustering.sizes[list] = size + 1;
    clustering.listOf[slot] = list;
    clustering.posInList[slot] = size;
  }

  private unassign(clustering: Clustering, slot: number): void {
    const list = clustering.listOf[slot];
    if (list < 0) return;
    const members = clustering.members[list];
    const last = clustering.sizes[list] - 1;
    const position = clustering.posInList[slot];
    const moved = members[last];
    members[position] = moved;
    clustering.posInList[moved] = position;
    clustering.sizes[list] = last;
    clustering.listOf[slot] = -1;
  }

  /** Dot products of the query (at queryAt) with `count` codes listed at byte `slotsAt` of `base`. */
  private scanSlots(slotsAt: number, count: number, base: number): Int32Array {
    this.kernel.scan_i8(this.queryAt, base, slotsAt, count, this.width, this.outAt);
    return new Int32Array(this.kernel.memory.buffer, this.outAt, count);
  }

  private scanInto(heap: TopK, slots: Int32Array, count: number, queryScale: number): void {
    for (let start = 0; start < count; start += BATCH) {
      const n = Math.min(BATCH, count - start);
      new Int32Array(this.kernel.memory.buffer, this.slotsAt, n).set(slots.subarray(start, start + n));
      const dots = this.scanSlots(this.slotsAt, n, this.codesAt);
      for (let i = 0; i < n; i++) {
        const slot = slots[start + i];
        heap.offer(slot, dots[i] * queryScale * this.scales[slot]);
      }
    }
  }

  private accumulate(sums: Float32Array, cluster: number, slot: number): void {
    const code = new Int8Array(this.kernel.memory.buffer, this.codeAt(slot), this.dim);
    const scale = this.scales[slot];
    const offset = cluster * this.dim;
    for (let i = 0; i < this.dim; i++) sums[offset + i] += code[i] * scale;
  }

  /** Up to `n` live slots in a seeded shuffled order. */
  private sampleSlots(n: number): number[] {
    const live = [...this.slotOf.values()];
    let state = 0x9e3779b9;
    for (let i = live.length - 1; i > 0; i--) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const j = state % (i + 1);
      [live[i], live[j]] = [live[j], live[i]];
    }
    return live.slice(0, n);
  }
}

/** A copy of `array` with room for `length` entries, new ones set to `fill`. */
function resized(array: Int32Array, length: number, fill: number): Int32Array {
  if (array.length >= length) return array;
  const next = new Int32Array(length).fill(fill);
  next.set(array);
  return next;
}

function normalize(row: Float32Array): void {
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += row[i] * row[i];
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < row.length; i++) row[i] = row[i] / norm;
}

/** The k largest (score, slot) pairs seen: a binary min-heap on parallel arrays. */
class TopK {
  private readonly scores: Float64Array;
  private readonly slots: Int32Array;
  private size = 0;

  constructor(private readonly k: number) {
    this.scores = new Float64Array(k);
    this.slots = new Int32Array(k);
  }

  offer(slot: number, score: number): void {
    const { scores, slots } = this;
    if (this.size < this.k) {
      let i = this.size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (scores[parent] <= score) break;
        scores[i] = scores[parent]!;
        slots[i] = slots[parent]!;
        i = parent;
      }
      scores[i] = score;
      slots[i] = slot;
      return;
    }
    if (score <= scores[0]) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= this.size) break;
      const right = left + 1;
      const child = right < this.size && scores[right] < scores[left] ? right : left;
      if (scores[child] >= score) break;
      scores[i] = scores[child]!;
      slots[i] = slots[child]!;
      i = child;
    }
    scores[i] = score;
    slots[i] = slot;
  }

  sorted(): Array<{ slot: number; score: number }> {
    return Array.from({ length: this.size }, (_, i) => ({ slot: this.slots[i], score: this.scores[i] })).sort(
      (a, b) => b.score - a.score,
    );
  }
}
