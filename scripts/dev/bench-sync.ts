// ERPNext sync throughput (a command, not a test):
//   npm run bench:sync -- --model PATH [--items N] [--runs N] [--size WxH]
// Seeds the Frappe double (test/support, on loopback) with N Items of 1-4 photo-like JPEGs each (2.5 images
// per Item on average), then, per run, syncs them into a fresh embedded catalog with the given model, as
// `ops sync` does, and syncs again with nothing changed. Prints each run and the medians: Items/s and images/s
// of the first sync, seconds of the second.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../service/src/config.js';
import { erpNextSync } from '../../service/src/erpnext/connector.js';
import type { SyncReporter } from '../../service/src/erpnext/sync.js';
import { openService } from '../../service/src/service.js';
import { seedCatalog } from '../../test/support/erpnext-seed.js';
import { FrappeDouble } from '../../test/support/frappe-double.js';
import { photo } from '../../test/support/images.js';
import { numberFlag, runTool, ToolUsageError } from './tool.js';

const HELP = `Usage: npm run bench:sync -- --model FILE [--items N] [--runs N] [--size WxH]
  --model  ONNX model with its sidecar (required)
  --items  ERPNext Items, 1-4 images each (default 200)
  --runs   syncs into a fresh catalog (default 3)
  --size   pixels of each ERPNext image (default 800x600, JPEG quality 85)`;

const quiet: SyncReporter = {
  info: () => {},
  warn: (message) => console.error(`warn: ${message}`),
  progress: () => ({ advance: () => {}, done: () => {} }),
};

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      items: { type: 'string', default: '200' },
      runs: { type: 'string', default: '3' },
      size: { type: 'string', default: '800x600' },
    },
  });
  if (!values.model) throw new ToolUsageError('--model is required');
  const items = numberFlag(values.items, 'items');
  const runs = numberFlag(values.runs, 'runs');
  const size = /^(\d+)x(\d+)$/.exec(values.size);
  if (!size) throw new ToolUsageError(`--size must look like 800x600 (got ${JSON.stringify(values.size)})`);
  const [width, height] = [Number(size[1]), Number(size[2])];

  const double = await FrappeDouble.start();
  const dirs: string[] = [];
  try {
    const user = double.addApiUser('bench@example.com', ['Item', 'File']);
    let seed = 1;
    const seeded = await seedCatalog(double, items, 'ITEM-', () =>
      photo(width, height, seed++).jpeg({ quality: 85 }).toBuffer(),
    );
    const images = seeded.reduce((sum, item) => sum + item.urls.length, 0);
    console.log(
      `${items} Items, ${images} images of ${width}x${height}; model ${path.basename(values.model)}; ` +
        `${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); node ${process.version}`,
    );
    const first: number[] = [];
    const second: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const dir = mkdtempSync(path.join(tmpdir(), 'bench-sync-'));
      dirs.push(dir);
      const config = loadConfig({
        DATA_DIR: path.join(dir, 'data'),
        MODEL_PATH: path.resolve(values.model),
        ERPNEXT_URL: double.url,
        ERPNEXT_API_KEY: user.key,
        ERPNEXT_API_SECRET: user.secret,
      });
      const service = await openService(config, quiet, undefined, { warmIndex: false });
      const sync = erpNextSync(config, service.catalog, quiet);
      try {
        const a = await sync.run({ reporter: quiet });
        if (a.items_added !== items || a.images_added !== images || a.failed !== 0) {
          throw new Error(`the first sync did not bring everything in: ${JSON.stringify(a)}`);
        }
        const b = await sync.run({ reporter: quiet });
        if (b.items_added + b.items_updated + b.images_added + b.images_removed + b.failed !== 0) {
          throw new Error(`the second sync changed something: ${JSON.stringify(b)}`);
        }
        first.push(a.duration_s);
        second.push(b.duration_s);
        console.log(
          `run ${run}: first sync ${a.duration_s.toFixed(1)} s (${(items / a.duration_s).toFixed(1)} Items/s, ` +
            `${(images / a.duration_s).toFixed(1)} images/s); unchanged re-run ${b.duration_s.toFixed(2)} s`,
        );
      } finally {
        sync.close();
        await service.close();
      }
    }
    const m = median(first);
    console.log(
      `median of ${runs}: ${(items / m).toFixed(1)} Items/s, ${(images / m).toFixed(1)} images/s ` +
        `(${m.toFixed(1)} s); unchanged re-run ${median(second).toFixed(2)} s`,
    );
  } finally {
    await double.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

await runTool(HELP, main);
