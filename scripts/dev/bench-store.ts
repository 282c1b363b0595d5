// Embedded store benchmark (a command, not a test):
//   npm run bench:store -- [--points 100000] [--dim 1280] [--queries 200]
// Fills a temporary embedded store with clustered unit vectors shaped like product-photo embeddings
// (categories of similar items, several images per item), then measures grouped k=5 searches through
// the adapter (HNSW candidates,
// exact float32 rescoring, one row per item) and checks them against an exact brute-force scan.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import type { ImageRecord } from '../../service/src/store/port.js';
import { recordFrom } from '../../service/src/schemas/records.js';

const { values } = parseArgs({
  options: {
    points: { type: 'string', default: '100000' },
    dim: { type: 'string', default: '1280' },
    queries: { type: 'string', default: '200' },
  },
});
const N = Number(values.points);
const DIM = Number(values.dim);
const QUERIES = Number(values.queries);
const IMAGES_PER_ITEM = 3;

let seed = 42;
const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;

function unit(vector: Float32Array): Float32Array {
  const norm = Math.hypot(...vector);
  return vector.map((x) => x / norm);
}

const noisy = (base: Float32Array, amount: number) => unit(base.map((x) => x + (random() - 0.5) * amount));
const CATEGORIES = 200;
const categories = Array.from({ length: CATEGORIES }, () =>
  unit(Float32Array.from({ length: DIM }, () => random() - 0.5)),
);
/** Items of a category resemble each other; images of an item resemble it more. */
const makeItem = (index: number) => noisy(categories[index % CATEGORIES], 0.12);
const makeVector = (item: Float32Array) => noisy(item, 0.06);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1];

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-store-'));
  try {
    const store = openEmbeddedStore({ dataDir: dir });
    await store.createCollection('bench', DIM, 'bench');
    const collection = store.collection('bench');
    const items: Float32Array[] = [];
    const all: Float32Array[] = [];
    const itemOf: string[] = [];
    let t = performance.now();
    for (let start = 0; start < N; start += 1000) {
      const batch: Array<{ record: ImageRecord; vector: Float32Array }> = [];
      for (let i = start; i < Math.min(N, start + 1000); i++) {
        const itemIndex = Math.floor(i / IMAGES_PER_ITEM);
        items[itemIndex] ??= makeItem(itemIndex);
        const vector = makeVector(items[itemIndex]);
        all.push(vector);
        itemOf.push(`item-${itemIndex}`);
        batch.push({
          record: recordFrom({
            image_id: `img-${String(i).padStart(8, '0')}`,
            item_id: `item-${itemIndex}`,
            item_name: null,
            item_code: null,
            file: 'f',
            sha256: 'x',
            bytes: 0,
            model: 'bench',
            created_at: '2026-01-01T00:00:00Z',
          }),
          vector,
        });
      }
      await collection.upsertMany(batch);
    }
    const insertSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    await store.prepareIndex('bench');
    const indexSeconds = (performance.now() - t) / 1000;

    const latencies: number[] = [];
    let agree = 0;
    let firstRight = 0;
    let firstExact = 0;
    for (let q = 0; q < QUERIES; q++) {
      const targetIndex = Math.floor(random() * items.length);
      const target = items[targetIndex];
      const query = makeVector(target);
      const start = performance.now();
      const hits = await collection.searchItems(query, 5);
      latencies.push(performance.now() - start);
      // Exact answer: best image score per item over every vector.
      const best = new Map<string, number>();
      all.forEach((vector, i) => {
        let dot = 0;
        for (let d = 0; d < DIM; d++) dot += vector[d] * query[d];
        if (dot > (best.get(itemOf[i]) ?? -2)) best.set(itemOf[i], dot);
      });
      const exact = [...best.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([item]) => item);
      agree += hits.filter((hit) => exact.includes(hit.record.item_id)).length;
      if (hits[0]?.record.item_id === `item-${targetIndex}`) firstRight++;
      if (hits[0]?.record.item_id === exact[0]) firstExact++;
    }
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`);
    console.log(
      `points ${N} × ${DIM}-d (${IMAGES_PER_ITEM} images per item), insert ${insertSeconds.toFixed(1)} s ` +
        `(index kept up to date as it goes), final index checkpoint ${indexSeconds.toFixed(1)} s`,
    );
    console.log(
      `grouped search k=5: median ${median(latencies).toFixed(2)} ms, p95 ${p95(latencies).toFixed(2)} ms over ` +
        `${QUERIES} queries`,
    );
    const percent = (n: number, of: number) => `${((100 * n) / of).toFixed(1)}%`;
    console.log(
      `recall of the exact top-5 items: ${percent(agree, QUERIES * 5)}; first item same as exact: ` +
        `${percent(firstExact, QUERIES)}; queried item first: ${percent(firstRight, QUERIES)}`,
    );
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
