// Embedding benchmark (a command, not a test):
//   npm run bench:embed -- [--model PATH] [--images DIR] [--runs N]
// Prints, per image size class, decode+preprocess and inference times (median, p95) and end-to-end
// images/s with 1 and 2 requests in flight. Without --images it makes its own photo-like JPEGs.
import { cpus } from 'node:os';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Embedder } from '../../service/src/embedding/embedder.js';
import { loadModel } from '../../service/src/embedding/model.js';
import { WorkQueue } from '../../service/src/embedding/work-queue.js';
import { preprocess } from '../../service/src/images/preprocess.js';
import { numberFlag, runTool, ToolUsageError } from './tool.js';

const HELP = `Usage: npm run bench:embed -- [--model FILE] [--images DIR] [--runs N] [--threads N]
  --model    ONNX model with its sidecar (default: MODEL_PATH or models/efficientnet_b0.onnx)
  --images   directory of photos (searched recursively); default: generated 1024x768 and 12 MP JPEGs
  --runs     timed runs per image class (default 20)
  --threads  onnxruntime intra-op threads per inference worker (default 1)`;

let values: { model: string; images?: string; runs: string; threads: string };
let runs = 0;
const MAX_PIXELS = 100_000_000;

/** Smooth colour fields with edges and sensor-like noise: compresses like a phone photo. */
async function photoJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let state = seed * 2654435761;
  const noise = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 24) / 32 - 4;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const v = y / height;
      const i = (y * width + x) * 3;
      const blob = Math.hypot(u - 0.3 - seed * 0.05, v - 0.6) < 0.2 ? 70 : 0;
      data[i] = Math.max(0, Math.min(255, 90 + 120 * u + blob + noise()));
      data[i + 1] = Math.max(0, Math.min(255, 60 + 140 * v * (1 - u) + noise()));
      data[i + 2] = Math.max(0, Math.min(255, 200 - 150 * v + 40 * Math.sin(u * 20 + seed) + noise()));
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

async function imageSets(): Promise<Record<string, Buffer[]>> {
  if (!values.images) {
    const count = Math.min(runs, 12);
    const make = (w: number, h: number) => Promise.all(Array.from({ length: count }, (_, i) => photoJpeg(w, h, i + 1)));
    return { '1024x768': await make(1024, 768), '12MP (4032x3024)': await make(4032, 3024) };
  }
  const sets: Record<string, Buffer[]> = {};
  for (const file of (await readdir(values.images, { recursive: true })).sort()) {
    if (!/\.(jpe?g|png|webp|heic|avif|tiff?)$/i.test(file)) continue;
    const bytes: Buffer = await readFile(path.join(values.images, file));
    const { width = 0, height = 0 }: { width?: number; height?: number } = await sharp(bytes).metadata();
    const megapixels: number = (width * height) / 1e6;
    const label = megapixels < 2 ? 'under 2 MP' : megapixels < 8 ? '2-8 MP' : '8 MP and more';
    (sets[label] ??= []).push(bytes);
  }
  return sets;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
const ms = (x: number) => x.toFixed(1).padStart(7);

async function main(): Promise<void> {
  const model = await loadModel(values.model, { threads: Number(values.threads), workers: 2 });
  const { manifest } = model;
  console.log(
    `model ${values.model} (${manifest.name}, ${manifest.dim}-d), 2 inference workers × ${values.threads} ` +
      `onnxruntime intra-op thread(s)`,
  );
  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}, sharp ` +
      `${sharp.versions.sharp} / libvips ${sharp.versions.vips}`,
  );
  const sets = await imageSets();
  console.log('');
  console.log(
    'class              images  decode+prep med  p95 | infer med   p95 | total med   p95 | img/s @1  img/s @2',
  );
  for (const [label, images] of Object.entries(sets)) {
    const prep: number[] = [];
    const infer: number[] = [];
    const total: number[] = [];
    for (let run = 0; run < runs; run++) {
      const bytes = images[run % images.length];
      const t0 = performance.now();
      const tensor = await preprocess(bytes, manifest, { maxPixels: MAX_PIXELS });
      const t1 = performance.now();
      await model.run([tensor]);
      const t2 = performance.now();
      prep.push(t1 - t0);
      infer.push(t2 - t1);
      total.push(t2 - t0);
    }
    const throughput: number[] = [];
    for (const concurrency of [1, 2]) {
      const embedder = new Embedder(model, new WorkQueue(concurrency, runs), MAX_PIXELS);
      const start = performance.now();
      await Promise.all(Array.from({ length: runs }, (_, i) => embedder.embed(images[i % images.length])));
      throughput.push((runs * 1000) / (performance.now() - start));
    }
    console.log(
      `${label.padEnd(18)} ${String(images.length).padStart(6)}  ${ms(median(prep))} ${ms(p95(prep))} | ` +
        `${ms(median(infer))} ${ms(p95(infer))} | ${ms(median(total))} ${ms(p95(total))} | ` +
        `${throughput[0].toFixed(1).padStart(7)}  ${throughput[1].toFixed(1).padStart(8)}`,
    );
  }
  await model.close();
}

await runTool(HELP, async () => {
  ({ values } = parseArgs({
    options: {
      model: { type: 'string', default: process.env.MODEL_PATH ?? 'models/efficientnet_b0.onnx' },
      images: { type: 'string' },
      runs: { type: 'string', default: '20' },
      threads: { type: 'string', default: '1' },
      help: { type: 'boolean' },
    },
  }));
  runs = numberFlag(values.runs, 'runs');
  numberFlag(values.threads, 'threads');
  if (values.images && !(await readdir(values.images).catch(() => undefined))) {
    throw new ToolUsageError(`--images ${values.images} is not a readable directory`);
  }
  await main();
});
