// HTTP overhead of /embed (a developer tool; reads ../shared by default):
//   npm run bench:embed-http -- [--model PATH] [--data DIR] [--rounds N] [--torch]
// The same 1024×768 store photos are embedded three ways, one at a time, in rotating order so that drift on a
// noisy VM hits all three alike: in this process (the server's own pipeline: sharp decode + onnxruntime worker,
// the ModelRegistry the server builds), and over HTTP against the real server as its own process on 127.0.0.1,
// once with a keep-alive node:http client sending a prepared multipart body and once with a plain
// `fetch` + `FormData` client (what an integrator writes). Prints each median and p90, and each HTTP
// way's overhead: its median minus the in-process median, and the median of the per-photo differences.
// --cpu-prof profiles the server and prints where its main thread's time goes per request (cpu-profile.ts).
// --torch also times the original Python service's pipeline on the same photos (Debian's /usr/bin/python3 with
// torch and torchvision; scripts/dev/bench-torch-pipeline.py) and prints its ratio to the fetch client.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ModelRegistry } from '../../service/src/embedding/registry.js';
import {
  BOUNDARY,
  dataImages,
  dataSetOptions,
  here,
  multipartBody,
  queryPhotos,
  startServer,
  stopServer,
} from './bench-server.js';
import { summariseProfile } from './cpu-profile.js';
import { numberFlag, runTool } from './tool.js';

const HELP = `Usage: npm run bench:embed-http -- [--model PATH] [--data DIR] [--rounds N] [--torch] [--cpu-prof]
  --model   ONNX model with its sidecar (default ../shared/models/efficientnet_b0-random.onnx)
  --data    folder with manifest.csv (file,item,kind); its store photos are the queries
            (default ../shared/data/grocery-dev)
  --rounds  passes over the (up to 64) photos (default 3)
  --torch   also run the PyTorch pipeline on the same photos (/usr/bin/python3 with torch and torchvision)
  --cpu-prof  profile the server (node --cpu-prof) and print its main thread's time per request by kind`;

const PORT = 18791;
/** The server's defaults (config.ts): 1 intra-op thread per worker, 2 workers. */
const REGISTRY = { threads: 1, concurrency: 2, queueMax: 64, maxPixels: 100_000_000 };

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => sorted(xs)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.9) - 1)]!;

/** One POST over a kept-alive socket; resolves with the parsed answer. */
function keepAlivePost(agent: http.Agent, body: Buffer): Promise<{ vector: number[] }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host: '127.0.0.1',
        port: PORT,
        method: 'POST',
        path: '/embed',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (response.statusCode !== 200) reject(new Error(`/embed answered ${response.statusCode}: ${text}`));
          else resolve(JSON.parse(text) as { vector: number[] });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function fetchPost(bytes: Buffer): Promise<{ vector: number[] }> {
  const form = new FormData();
  form.set('file', new Blob([bytes], { type: 'image/jpeg' }), 'q.jpg');
  const response = await fetch(`http://127.0.0.1:${PORT}/embed`, { method: 'POST', body: form });
  if (response.status !== 200) throw new Error(`/embed answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { vector: number[] };
}

/** The main thread's profile (thread 0 in the file name) summarised from the first /embed on. */
function printProfile(dir: string, requests: number): void {
  const main = readdirSync(dir).find((name) => name.split('.')[4] === '0');
  if (!main) throw new Error(`no main-thread profile in ${dir}`);
  const { groups, total } = summariseProfile(path.join(dir, main), requests, /routes\/embed/);
  console.log(`\nserver main thread, CPU per /embed request (node --cpu-prof, ${requests} requests):\n`);
  console.log('| where | µs per request |');
  console.log('|---|---|');
  for (const { group, microseconds } of groups) console.log(`| ${group} | ${microseconds.toFixed(0)} |`);
  console.log(`| **all** | **${total.toFixed(0)}** |`);
}

await runTool(HELP, async () => {
  const { values } = parseArgs({
    options: {
      ...dataSetOptions,
      rounds: { type: 'string', default: '3' },
      torch: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
    },
  });
  const rounds = numberFlag(values.rounds, 'rounds');
  const model = path.resolve(values.model);
  const photos = await queryPhotos(dataImages(values.data), 64);
  const bodies = photos.map(multipartBody);
  const work = mkdtempSync(path.join(tmpdir(), 'bench-embed-http-'));
  const registry = new ModelRegistry(model, REGISTRY);
  const profiles = path.join(work, 'profiles');
  const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', profiles] : [];
  let httpRequests = 0;
  try {
    const server = await startServer({ dataDir: path.join(work, 'data'), model, port: PORT, nodeArgs });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const embedder = await registry.default();
      const ways: Record<string, (i: number) => Promise<unknown>> = {
        'in-process pipeline': (i) => embedder.embed(photos[i]!),
        'HTTP, keep-alive node:http client': (i) => (httpRequests++, keepAlivePost(agent, bodies[i]!)),
        'HTTP, fetch + FormData client': (i) => (httpRequests++, fetchPost(photos[i]!)),
      };
      const names = Object.keys(ways);
      // Same answer both ways: the HTTP vector is the in-process one (JSON keeps float32 exactly).
      const direct = Array.from(await embedder.embed(photos[0]!));
      const served = (await keepAlivePost(agent, bodies[0]!)).vector;
      httpRequests++;
      if (direct.some((x, i) => Math.abs(x - served[i]!) > 1e-6)) throw new Error('/embed differs from in-process');
      for (let i = 0; i < 8; i++) for (const name of names) await ways[name]!(i % photos.length); // warm-up
      const times: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < photos.length; i++) {
          for (let k = 0; k < names.length; k++) {
            const name = names[(i + k + round) % names.length]!;
            const start = performance.now();
            await ways[name]!(i);
            times[name]!.push(performance.now() - start);
          }
        }
      }
      const base = times[names[0]!]!;
      console.log(
        `${photos.length} store photos at 1024×768 × ${rounds} rounds, ${path.basename(model)}, ` +
          `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}\n`,
      );
      console.log('| way | median ms | p90 ms | median − in-process | median of per-photo differences |');
      console.log('|---|---|---|---|---|');
      for (const name of names) {
        const own = times[name]!;
        const paired = own.map((t, i) => t - base[i]!);
        const extra = name === names[0] ? '–' : `+${(median(own) - median(base)).toFixed(2)} ms`;
        const pairedText = name === names[0] ? '–' : `+${median(paired).toFixed(2)} ms`;
        console.log(`| ${name} | ${median(own).toFixed(2)} | ${p90(own).toFixed(2)} | ${extra} | ${pairedText} |`);
      }
      if (values.torch) {
        const dir = path.join(work, 'photos');
        mkdirSync(dir);
        photos.forEach((bytes, i) => writeFileSync(path.join(dir, `q${String(i).padStart(2, '0')}.jpg`), bytes));
        const script = path.join(here, 'scripts', 'dev', 'bench-torch-pipeline.py');
        const output = execFileSync('/usr/bin/python3', [script, dir, '--runs', String(rounds)], { encoding: 'utf8' });
        const torch = Number(/median ([\d.]+) ms/.exec(output)?.[1]);
        const fetched = median(times[names[2]!]!);
        console.log(
          `\n${output.trim()}\nPyTorch pipeline ÷ /embed with fetch + FormData: ${(torch / fetched).toFixed(2)}×`,
        );
      }
    } finally {
      agent.destroy();
      await stopServer(server); // the profile is written as the server exits
    }
    if (values['cpu-prof']) printProfile(profiles, httpRequests);
  } finally {
    await registry.close();
    rmSync(work, { recursive: true, force: true });
  }
});
