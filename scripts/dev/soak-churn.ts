// Developer tool (a soak, not a test): add/remove churn through the embedded store's port, the load that
// froze the usearch index it replaced. Keeps `--live` points, then for each cycle adds a new point,
// searches for it, deletes an older one and searches for that one; fails the moment a removed vector comes
// back or an added one is not found. Reports cycles/s, the slowest cycle, and the RSS.
//   npm run soak:churn -- [--live 10000] [--cycles 200000] [--dim 1280] [--dir DIR]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import type { ImageRecord } from '../../service/src/store/port.js';
import { numberFlag, runTool } from './tool.js';
import { recordFrom } from '../../service/src/schemas/records.js';

const HELP = `Usage: npm run soak:churn -- [--live N] [--cycles N] [--dim N] [--dir DIR]
  --live    points kept in the store while churning (default 10000)
  --cycles  add/remove cycles (default 200000)
  --dim     vector width (default 1280)
  --dir     data directory to use (default: a temporary one, removed afterwards)`;

await runTool(HELP, async () => {
  const { values } = parseArgs({
    options: {
      live: { type: 'string', default: '10000' },
      cycles: { type: 'string', default: '200000' },
      dim: { type: 'string', default: '1280' },
      dir: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const live = numberFlag(values.live, 'live');
  const cycles = numberFlag(values.cycles, 'cycles');
  const dim = numberFlag(values.dim, 'dim');
  const dir = values.dir ?? mkdtempSync(path.join(tmpdir(), 'soak-churn-'));
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const vectorOf = () => Float32Array.from({ length: dim }, () => random() - 0.5);
  const record = (n: number): ImageRecord =>
    recordFrom({
      image_id: `img-${n}`,
      item_id: `item-${n}`,
      item_name: null,
      item_code: null,
      file: `${n}.jpg`,
      sha256: 'x',
      bytes: 1,
      model: 'soak',
      created_at: new Date().toISOString(),
    });
  const store = openEmbeddedStore({ dataDir: dir, log: (m) => console.error(m) });
  try {
    await store.createCollection('soak', dim, 'soak');
    const c = store.collection('soak');
    const vectors = new Map<number, Float32Array>();
    for (let start = 0; start < live; start += 1000) {
      const batch = Array.from({ length: Math.min(1000, live - start) }, (_, i) => {
        const vector = vectorOf();
        vectors.set(start + i, vector);
        return { record: record(start + i), vector };
      });
      await c.upsertMany(batch);
    }
    console.error(`${live} points stored in ${dir}; churning ${cycles} cycles at ${dim}-d`);
    let slowest = 0;
    const started = performance.now();
    let oldest = 0;
    let peakRss = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const cycleStart = performance.now();
      const n = live + cycle;
      const vector = vectorOf();
      vectors.set(n, vector);
      await c.upsert(record(n), vector);
      const [found] = await c.searchItems(vector, 1);
      if (found?.record.image_id !== `img-${n}`)
        throw new Error(`cycle ${cycle}: the point just added was not found first`);
      const gone = vectors.get(oldest)!;
      vectors.delete(oldest);
      await c.deleteImages([`img-${oldest}`]);
      const after = await c.searchItems(gone, 5);
      if (after.some((m) => m.record.image_id === `img-${oldest}`)) {
        throw new Error(`cycle ${cycle}: removed point img-${oldest} came back in a search`);
      }
      oldest++;
      slowest = Math.max(slowest, performance.now() - cycleStart);
      if ((cycle + 1) % 10_000 === 0) {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        const seconds = (performance.now() - started) / 1000;
        console.error(
          `${cycle + 1} cycles, ${((cycle + 1) / seconds).toFixed(0)} cycles/s, ` +
            `slowest cycle ${slowest.toFixed(1)} ms, RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
        );
      }
    }
    const count = await c.count();
    if (count !== live) throw new Error(`${count} points at the end, expected ${live}`);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      JSON.stringify({
        live,
        cycles,
        dim,
        seconds: Number(seconds.toFixed(1)),
        cycles_per_s: Number((cycles / seconds).toFixed(1)),
        slowest_cycle_ms: Number(slowest.toFixed(1)),
        peak_rss_mib: Math.round(Math.max(peakRss, process.memoryUsage().rss) / 2 ** 20),
        machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}`,
        removed_returned: 0,
      }),
    );
  } finally {
    await store.close();
    if (!values.dir) rmSync(dir, { recursive: true, force: true });
  }
});
