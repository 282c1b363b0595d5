// The embedded vector index on its own: the WebAssembly kernel against plain arithmetic, exact answers
// below the clustering threshold, good candidates above it, removed vectors never coming back under
// add/remove churn (the failure of the usearch index it replaced), training that keeps serving, and
// checkpoints that round-trip and refuse damage.
import { describe, expect, it } from 'vitest';
import { compileKernel, generatedSource } from '../../../../scripts/dev/build-kernel.js';
import { readFileSync } from 'node:fs';
import {
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpointParts,
} from '../../../../service/src/store/embedded/vector-index/checkpoint.js';
import { instantiateKernel } from '../../../../service/src/store/embedded/vector-index/kernel.js';
import { VectorIndex } from '../../../../service/src/store/embedded/vector-index/vector-index.js';
import { GENERATED_PATH } from '../../../../scripts/dev/build-kernel.js';

/** Deterministic pseudo-random numbers (LCG), so failures are reproducible. */
function rng(seed: number) {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

function unit(values: ArrayLike<number>): Float32Array {
  const v = Float32Array.from(values);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * b[i]!, 0);

/** Clustered unit vectors like product photos: categories, items in them, images of items. */
function clustered(count: number, dim: number, seed = 1) {
  const random = rng(seed);
  const noisy = (base: Float32Array, amount: number) => unit(base.map((x) => x + (random() - 0.5) * amount));
  const categories = Array.from({ length: 20 }, () => unit(Array.from({ length: dim }, () => random() - 0.5)));
  return Array.from({ length: count }, (_, i) => noisy(categories[i % 20]!, 0.9));
}

function exactTop(vectors: Map<number, Float32Array>, query: Float32Array, k: number): number[] {
  return [...vectors]
    .map(([key, v]) => ({ key, score: dot(query, v) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map((c) => c.key);
}

describe('WebAssembly kernel', () => {
  it('kernel-wasm.ts is the compiled kernel.wat (run `npm run build:kernel` after editing the .wat)', async () => {
    expect(readFileSync(GENERATED_PATH, 'utf8')).toBe(generatedSource(await compileKernel()));
  });

  it('dot_i8 and scan_i8 equal plain integer arithmetic, padding included', () => {
    const kernel = instantiateKernel();
    const random = rng(7);
    const n = 48;
    const memory = new Int8Array(kernel.memory.buffer);
    const a = Int8Array.from({ length: n }, () => Math.round(random() * 254 - 127));
    const rows = Array.from({ length: 5 }, () => Int8Array.from({ length: n }, () => Math.round(random() * 254 - 127)));
    memory.set(a, 0);
    rows.forEach((row, i) => memory.set(row, 1024 + i * n));
    const expected = rows.map((row) => row.reduce((sum, x, i) => sum + x * a[i]!, 0));
    expect(kernel.dot_i8(0, 1024 + 2 * n, n)).toBe(expected[2]);
    new Int32Array(kernel.memory.buffer, 4096, 3).set([4, 0, 2]);
    kernel.scan_i8(0, 1024, 4096, 3, n, 8192);
    expect(Array.from(new Int32Array(kernel.memory.buffer, 8192, 3))).toEqual([expected[4], expected[0], expected[2]]);
  });
});

describe('VectorIndex', () => {
  it('below the clustering threshold a search is exact (same order as float32, scores within 0.02)', () => {
    const dim = 40; // not a multiple of 16: exercises the zero padding
    const index = new VectorIndex({ dim });
    const vectors = new Map(clustered(500, dim).map((v, i) => [i + 1, v]));
    for (const [key, v] of vectors) index.add(key, v);
    expect(index.clusters).toBe(1);
    const random = rng(3);
    for (let q = 0; q < 20; q++) {
      const query = unit(Array.from({ length: dim }, () => random() - 0.5));
      const found = index.search(query, 10);
      const exact = exactTop(vectors, query, 1);
      expect(found[0]!.key).toBe(exact[0]);
      for (const { key, score } of found) expect(Math.abs(score - dot(query, vectors.get(key)!))).toBeLessThan(0.02);
    }
  });

  it('clusters above the threshold and still finds the exact nearest for almost every query', async () => {
    const dim = 64;
    const index = new VectorIndex({ dim, trainAt: 1000 });
    const vectors = new Map(clustered(4000, dim, 5).map((v, i) => [i + 1, v]));
    for (const [key, v] of vectors) index.add(key, v);
    expect(index.needsTraining()).toBe(true);
    await index.train();
    expect(index.clusters).toBeGreaterThan(16);
    const random = rng(11);
    let agree = 0;
    for (let q = 0; q < 100; q++) {
      const query = vectors.get(1 + Math.floor(random() * 4000))!.map((x) => x + (random() - 0.5) * 0.05);
      const candidates = index.search(unit(query), 32).map((c) => c.key);
      if (candidates.includes(exactTop(vectors, unit(query), 1)[0]!)) agree++;
    }
    expect(agree).toBeGreaterThanOrEqual(95);
    // Exhaustive breadth scans everything: then it is exact again.
    const query = unit(Array.from({ length: dim }, () => random() - 0.5));
    let breadth = 1;
    while (!index.exhaustive(breadth)) breadth *= 4;
    expect(index.search(query, 1, breadth)[0]!.key).toBe(exactTop(vectors, query, 1)[0]);
  });

  it('never returns a removed vector, and its size stays right, through 30,000 add/remove cycles', async () => {
    const dim = 32;
    const index = new VectorIndex({ dim, trainAt: 300 });
    const random = rng(17);
    const live = new Map<number, Float32Array>();
    let next = 1;
    const add = () => {
      const v = unit(Array.from({ length: dim }, () => random() - 0.5));
      live.set(next, v);
      index.add(next++, v);
    };
    for (let i = 0; i < 500; i++) add();
    for (let cycle = 0; cycle < 30_000; cycle++) {
      // Remove a random live vector, then search for exactly it: it must not come back.
      const keys = [...live.keys()];
      const victim = keys[Math.floor(random() * keys.length)]!;
      const vector = live.get(victim)!;
      expect(index.remove(victim)).toBe(true);
      live.delete(victim);
      if (cycle % 50 === 0) {
        let breadth = 1;
        while (!index.exhaustive(breadth)) breadth *= 4;
        expect(index.search(vector, 20, breadth).map((c) => c.key)).not.toContain(victim);
        expect(index.has(victim)).toBe(false);
      }
      add();
      if (cycle % 5000 === 0 && index.needsTraining()) await index.train();
      expect(index.size).toBe(live.size);
    }
  });

  it('keeps answering, and takes adds and removes, while it trains', async () => {
    const dim = 32;
    const index = new VectorIndex({ dim, trainAt: 500 });
    const vectors = clustered(2000, dim, 9);
    vectors.forEach((v, i) => index.add(i + 1, v));
    const training = index.train();
    let turns = 0;
    let done = false;
    void training.then(() => (done = true));
    while (!done) {
      // Interleave work with the training job: it must yield, and stay consistent.
      index.remove(turns + 1);
      index.add(10_000 + turns, vectors[turns]!);
      expect(index.search(vectors[turns]!, 1)[0]!.key).toBe(10_000 + turns);
      turns++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(turns).toBeGreaterThan(5);
    expect(index.size).toBe(2000);
    expect(index.search(vectors[1500]!, 1)[0]!.key).toBe(1501);
    expect(index.has(1)).toBe(false);
  });

  it('clear() stops a training job started before it', async () => {
    const index = new VectorIndex({ dim: 16, trainAt: 100 });
    clustered(400, 16).forEach((v, i) => index.add(i + 1, v));
    const training = index.train();
    index.clear();
    await training;
    expect(index.size).toBe(0);
    expect(index.clusters).toBe(1);
    expect(index.search(unit([1, ...new Array<number>(15).fill(0)]), 5)).toEqual([]);
  });
});

describe('index checkpoints', () => {
  const snapshotOf = async () => {
    const index = new VectorIndex({ dim: 24, trainAt: 200 });
    clustered(600, 24).forEach((v, i) => index.add(i + 1, v));
    await index.train();
    index.remove(7);
    return index;
  };
  const bytes = (index: VectorIndex) => Buffer.concat(encodeCheckpointParts(index.snapshot()));

  it('round-trips an index: same keys, clusters and answers', async () => {
    const index = await snapshotOf();
    const copy = VectorIndex.fromSnapshot(decodeCheckpoint(bytes(index)), { trainAt: 200 });
    expect(copy.size).toBe(index.size);
    expect(copy.clusters).toBe(index.clusters);
    expect(copy.has(7)).toBe(false);
    const query = clustered(1, 24, 99)[0]!;
    expect(copy.search(query, 10)).toEqual(index.search(query, 10));
  });

  it('refuses truncated, padded, foreign or inconsistent content with CheckpointError or a clear error', async () => {
    const good = bytes(await snapshotOf());
    const cases: Buffer[] = [
      good.subarray(0, good.length - 8),
      Buffer.concat([good, Buffer.alloc(8)]),
      Buffer.from('garbage that is not a checkpoint'),
      Buffer.alloc(0),
    ];
    for (const data of cases) expect(() => decodeCheckpoint(data)).toThrow(CheckpointError);
    // A header that lies about the sizes, and vector sections that disagree with the clusters.
    const lying = Buffer.from(good);
    lying.writeUInt32LE(0xffffff, 8 + 16);
    expect(() => decodeCheckpoint(lying)).toThrow(CheckpointError);
    const random = rng(23);
    for (let trial = 0; trial < 200; trial++) {
      const damaged = Buffer.from(good);
      for (let flips = 0; flips < 4; flips++) damaged[Math.floor(random() * damaged.length)] ^= 0xff;
      // Whatever the damage, decoding either fails cleanly or gives an index that works.
      try {
        const index = VectorIndex.fromSnapshot(decodeCheckpoint(damaged));
        index.search(clustered(1, 24, trial)[0]!, 5);
      } catch (error) {
        expect(error).toBeInstanceOf(Error);
      }
    }
  });
});
