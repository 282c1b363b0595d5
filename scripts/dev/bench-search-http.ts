// /search latency over HTTP at catalog scale, this tree against another checkout (a developer tool):
//   npm run bench:search-http -- --baseline ../wt/baseline [--points 100000] [--model PATH] [--data DIR]
// Each tree's own store code fills its own data directory with the same synthetic catalog (real photo
// embeddings plus noise, so neighbourhoods look like a real catalog's), then both APIs run side by side as
// child processes on 127.0.0.1 and get the same photos in alternating order (so machine load hits both
// alike). Prints the median and p90 of each and the ratio, per configuration.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { dataImages, dataSetOptions, here, startServer, stopServer } from './bench-server.js';
import { numberFlag, runTool } from './tool.js';

const HELP = `Usage: npm run bench:search-http -- --baseline DIR [--points N] [--model PATH] [--data DIR] [--rounds N]
  --baseline  another checkout of this repository with its node_modules (e.g. a git worktree of an older commit)
  --points    images in the catalog (default 100000; 4 per item)
  --model     ONNX model with its sidecar (default ../shared/models/efficientnet_b0-random.onnx)
  --data      folder with manifest.csv (file,item,kind): every image seeds the catalog, store photos are the
              queries (default ../shared/data/grocery-dev)
  --rounds    times each photo is searched per API (default 3)
  --route     /search (default), or /embed to time the decoding and inference alone`;

interface Tree {
  label: string;
  root: string;
  env?: Record<string, string>;
}

/** A seeded normal variate (Box-Muller over xorshift), so both trees get the same catalog. */
function gaussian(seed: number) {
  let state = seed >>> 0 || 1;
  const uniform = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) + 1) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

async function request(port: number, route: string, bytes: Buffer, fields: Record<string, string> = {}) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) form.set(key, value);
  form.set('file', new Blob([bytes]), 'query.jpg');
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}${route}`, { method: 'POST', body: form });
  const body = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${route} answered ${response.status}: ${JSON.stringify(body)}`);
  return { ms: performance.now() - started, body };
}

/** This tree's or the baseline's API on `port`: a large embedded index may take minutes to load. */
const startApi = (tree: Tree, dataDir: string, model: string, port: number): Promise<ChildProcess> =>
  startServer({
    root: tree.root,
    label: tree.label,
    dataDir,
    model,
    port,
    timeoutMs: 600_000,
    env: { EMBED_QUEUE_MAX: '1000', ...tree.env },
  });

interface StoreModule {
  openStore(
    config: object,
    log: unknown,
  ): {
    createCollection(name: string, dim: number, model: string): Promise<void>;
    setAlias(alias: string, collection: string): Promise<void>;
    collection(name: string): {
      upsertMany(points: Array<{ record: object; vector: Float32Array }>): Promise<void>;
    };
    prepareIndex?(name: string): Promise<void>;
    close(): Promise<void>;
  };
}

/** Fills `dataDir` through `tree`'s own store code: `points` images, 4 per item, near real embeddings. */
async function populate(
  tree: Tree,
  dataDir: string,
  model: { name: string; dim: number },
  seeds: number[][],
  n: number,
) {
  const storeModule = (await import(path.join(tree.root, 'service/src/store/open-store.ts'))) as StoreModule;
  const quiet = Object.assign(() => {}, { info: () => {}, warn: () => {} });
  const store = storeModule.openStore({ dataDir, qdrantUrl: undefined }, quiet);
  const name = `items_${model.name.toLowerCase().replace(/[^a-z0-9]+/g, '_')}_${model.dim}`;
  await store.createCollection(name, model.dim, model.name);
  await store.setAlias('items', name);
  const noise = gaussian(12345);
  const collection = store.collection(name);
  for (let start = 0; start < n; start += 1000) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const base = seeds[i % seeds.length]!;
      const vector = Float32Array.from(base, (x) => x + 0.04 * noise());
      const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
      const item = Math.floor(i / 4);
      batch.push({
        record: {
          image_id: id,
          item_id: `ITEM-${item}`,
          item_name: `Item ${item}`,
          item_code: `CODE-${item}`,
          item_group: `Group ${item % 20}`,
          brand: null,
          disabled: false,
          kind: i % 4 === 3 ? 'photo' : 'catalog',
          source: 'api',
          source_ref: null,
          phash: null,
          file: `${id.slice(0, 2)}/${id}.jpg`,
          sha256: id.replace(/-/g, '').padEnd(64, '0'),
          bytes: 1000,
          model: model.name,
          created_at: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
          // The same in the camelCase shape of releases before the TypeBox records (the baseline).
          imageId: id,
          itemId: `ITEM-${item}`,
          itemName: `Item ${item}`,
          itemCode: `CODE-${item}`,
          createdAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
        },
        vector,
      });
    }
    await collection.upsertMany(batch);
  }
  await store.prepareIndex?.(name);
  await store.close();
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const p90 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.9)]!;

await runTool(HELP, async () => {
  const { values } = parseArgs({
    options: {
      baseline: { type: 'string' },
      points: { type: 'string', default: '100000' },
      ...dataSetOptions,
      rounds: { type: 'string', default: '3' },
      route: { type: 'string', default: '/search' },
    },
  });
  if (!values.baseline) throw new Error('--baseline DIR is required (a checkout to compare with)');
  const model = path.resolve(values.model);
  const sidecar = JSON.parse(readFileSync(model.replace(/\.onnx$/, '.json'), 'utf8')) as { name: string; dim: number };
  const all = dataImages(values.data).map(({ file, kind }) => ({
    bytes: readFileSync(file),
    query: kind === 'natural',
  }));
  const photos = all.filter((image) => image.query).map((image) => image.bytes);
  const points = numberFlag(values.points, 'points');
  const trees: Tree[] = [
    { label: 'baseline', root: path.resolve(values.baseline) },
    { label: 'this tree', root: here },
    { label: 'this tree, SEARCH_ZOOM=1', root: here, env: { SEARCH_ZOOM: '1' } },
  ];
  const work = mkdtempSync(path.join(tmpdir(), 'bench-search-http-'));
  const children: ChildProcess[] = [];
  try {
    // Seeds: the photos' own embeddings, from this tree's API on an empty catalog.
    const seedApi = await startApi(trees[1]!, path.join(work, 'seed'), model, 18700);
    const seeds: number[][] = [];
    for (const { bytes } of all) seeds.push(((await request(18700, '/embed', bytes)).body.vector as number[]).slice());
    await stopServer(seedApi);
    console.log(`model ${sidecar.name} (${sidecar.dim}-d), ${photos.length} query photos, ${points} images`);
    for (const [i, tree] of trees.entries()) {
      if (i === 2) continue; // shares the data of "this tree" (a copy: the embedded store is one process's)
      const started = performance.now();
      await populate(tree, path.join(work, `data-${i}`), sidecar, seeds, points);
      console.log(`${tree.label}: filled in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    rmSync(path.join(work, 'data-2'), { recursive: true, force: true });
    await new Promise<void>((resolve, reject) =>
      spawn('cp', ['-a', path.join(work, 'data-1'), path.join(work, 'data-2')]).on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error('cp failed')),
      ),
    );
    const ports = trees.map((_, i) => 18710 + i);
    for (const [i, tree] of trees.entries())
      children.push(await startApi(tree, path.join(work, `data-${i}`), model, ports[i]!));
    // Warm-up: every photo once on each (indexes loaded, caches filled).
    for (const bytes of photos) for (const port of ports) await request(port, '/search', bytes, { top_k: '5' });
    const times: number[][] = trees.map(() => []);
    const rounds = numberFlag(values.rounds, 'rounds');
    const route = values.route === '/embed' ? '/embed' : '/search';
    const fields: Record<string, string> = route === '/search' ? { top_k: '5' } : {};
    for (let round = 0; round < rounds; round++) {
      for (const [p, bytes] of photos.entries()) {
        const order = trees.map((_, i) => (i + p + round) % trees.length);
        for (const i of order) times[i]!.push((await request(ports[i]!, route, bytes, fields)).ms);
      }
    }
    console.log(`\n| API | searches | median ms | p90 ms | median / baseline |`);
    console.log(`|---|---|---|---|---|`);
    for (const [i, tree] of trees.entries()) {
      const ratio = median(times[i]!) / median(times[0]!);
      console.log(
        `| ${tree.label} | ${times[i]!.length} | ${median(times[i]!).toFixed(1)} | ${p90(times[i]!).toFixed(1)} | ` +
          `${ratio.toFixed(2)} |`,
      );
    }
  } finally {
    await Promise.all(children.map(stopServer));
    rmSync(work, { recursive: true, force: true });
  }
});
