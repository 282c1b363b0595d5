// Load suite for the HTTP API (a developer tool; reads ../shared by default):
//   npm run bench:http -- [--model PATH] [--data DIR] [--route /search] [--seconds 20] [--soak 300]
// Starts the real server as a child process on 127.0.0.1 (embedded store in a temp dir, the catalog images of
// the data set ingested), then drives it with autocannon at concurrency 1, 4, 16 and 64 for a fixed time
// each, with real store photos resized to 1024×768 in rotation. Prints requests/s, p50/p99, status counts
// and the server's peak RSS per level. Under overload only `503 busy` (with Retry-After) is acceptable: any
// other non-2xx, socket error or timeout makes the run fail. `--soak S` then runs S seconds at concurrency 16
// and reports RSS growth from its first to its last minute.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  BOUNDARY,
  dataImages,
  dataSetOptions,
  multipartBody,
  queryPhotos,
  rssMiB,
  startServer,
  stopServer,
} from './bench-server.js';
import { numberFlag, runTool, ToolUsageError } from './tool.js';

const HELP = `Usage: npm run bench:http -- [--model PATH] [--data DIR] [--route R] [--seconds S] [--soak S]
  --model    ONNX model with its sidecar (default ../shared/models/efficientnet_b0-random.onnx)
  --data     folder with manifest.csv (file,item,kind): iconic images are ingested, store photos are the
             queries (default ../shared/data/grocery-dev)
  --route    /search (default) or /embed
  --seconds  duration of each concurrency level (default 20)
  --soak     also run this many seconds at concurrency 16 and report RSS growth (default 0: no soak)
  --save-photos DIR  also write the query photos there (for scripts/dev/bench-torch-pipeline.py)
  --glibc-defaults   run the server without the image's malloc settings (MALLOC_ENV), to compare`;

/** The malloc settings of the production image (service/Dockerfile): the server runs as deployed. */
const MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072' };

const PORT = 18790;
const LEVELS = [1, 4, 16, 64];

interface Level {
  connections: number;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  peakRss: number;
}

async function drive(pid: number, route: string, bodies: Buffer[], connections: number, seconds: number) {
  let next = 0;
  let peakRss = rssMiB(pid);
  const samples: number[] = [];
  const poll = setInterval(() => {
    const rss = rssMiB(pid);
    peakRss = Math.max(peakRss, rss);
    samples.push(rss);
  }, 250);
  try {
    const result = await autocannon({
      url: `http://127.0.0.1:${PORT}`,
      connections,
      duration: seconds,
      timeout: 30,
      requests: [
        {
          method: 'POST',
          path: route,
          headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
          setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }),
        },
      ],
    });
    const statuses: Record<string, number> = {};
    for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = stat?.count ?? 0;
    const level: Level = {
      connections,
      requests: result.requests.total,
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      statuses,
      errors: result.errors,
      timeouts: result.timeouts,
      peakRss,
    };
    return { level, samples };
  } finally {
    clearInterval(poll);
  }
}

await runTool(HELP, async () => {
  const { values } = parseArgs({
    options: {
      ...dataSetOptions,
      route: { type: 'string', default: '/search' },
      seconds: { type: 'string', default: '20' },
      soak: { type: 'string', default: '0' },
      'save-photos': { type: 'string' },
      'glibc-defaults': { type: 'boolean', default: false },
    },
  });
  if (values.route !== '/search' && values.route !== '/embed') throw new ToolUsageError('--route: /search or /embed');
  const seconds = numberFlag(values.seconds, 'seconds');
  const soak = numberFlag(values.soak, 'soak', 0);
  const images = dataImages(values.data);
  const photos = await queryPhotos(images, 64);
  const saveTo = values['save-photos'];
  if (saveTo) {
    mkdirSync(saveTo, { recursive: true });
    photos.forEach((bytes, i) => writeFileSync(path.join(saveTo, `q${String(i).padStart(2, '0')}.jpg`), bytes));
  }
  const queries = photos.map(multipartBody);
  const work = mkdtempSync(path.join(tmpdir(), 'bench-http-'));
  const server = await startServer({
    dataDir: work,
    model: path.resolve(values.model),
    port: PORT,
    env: values['glibc-defaults'] ? {} : MALLOC_ENV,
  });
  try {
    for (const image of images.filter((i) => i.kind === 'iconic')) {
      const form = new FormData();
      form.set('item_id', image.item);
      form.set('file', new Blob([readFileSync(image.file)]), 'catalog.jpg');
      const response = await fetch(`http://127.0.0.1:${PORT}/ingest`, { method: 'POST', body: form });
      if (response.status !== 201) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
    }
    await drive(server.pid!, values.route, queries, 2, 3); // warm-up
    console.log(
      `${values.route}, ${path.basename(values.model)}, ${queries.length} store photos at 1024×768, ` +
        `${seconds} s per level, ${values['glibc-defaults'] ? 'glibc malloc defaults' : 'malloc as in the image'}, ` +
        `server RSS before: ${rssMiB(server.pid!).toFixed(0)} MiB\n`,
    );
    console.log('| concurrency | requests | req/s | p50 ms | p99 ms | statuses | errors | peak RSS MiB |');
    console.log('|---|---|---|---|---|---|---|---|');
    const failures: string[] = [];
    for (const connections of LEVELS) {
      const { level } = await drive(server.pid!, values.route, queries, connections, seconds);
      const statuses = Object.entries(level.statuses)
        .map(([code, count]) => `${code}: ${count}`)
        .join(', ');
      console.log(
        `| ${connections} | ${level.requests} | ${level.rps.toFixed(1)} | ${level.p50} | ${level.p99} | ` +
          `${statuses} | ${level.errors + level.timeouts} | ${level.peakRss.toFixed(0)} |`,
      );
      const bad = Object.keys(level.statuses).filter((code) => code !== '200' && code !== '503');
      if (bad.length > 0 || level.errors > 0 || level.timeouts > 0)
        failures.push(`concurrency ${connections}: statuses ${bad.join(',') || '-'}, ${level.errors} errors`);
    }
    if (soak > 0) {
      const { level, samples } = await drive(server.pid!, values.route, queries, 16, soak);
      const window = Math.max(1, Math.min(240, Math.floor(samples.length / 5)));
      const first = Math.max(...samples.slice(0, window));
      const last = Math.max(...samples.slice(-window));
      console.log(
        `\nsoak: ${soak} s at concurrency 16, ${level.requests} requests, p99 ${level.p99} ms; ` +
          `RSS ${first.toFixed(0)} → ${last.toFixed(0)} MiB (${(((last - first) / first) * 100).toFixed(1)} %), ` +
          `peak ${level.peakRss.toFixed(0)} MiB`,
      );
    }
    if (failures.length > 0) throw new Error(`answers other than 200 and 503: ${failures.join('; ')}`);
  } finally {
    await stopServer(server);
    rmSync(work, { recursive: true, force: true });
  }
});
