// Near-copy evaluation (a measurement, not a test; reads ../shared):
//   npm run eval:near-copy -- [--data DIR] [--negatives N] [--threshold T] [--set NAME=NUMBER]
// Makes edited copies of every image of the grocery set (resize, re-encode, crop, brightness, contrast) and
// counts how many the near-copy rule flags, then compares pairs of images of different items (must never be
// flagged) and pairs of different photos of one item (reported only). Prints the distances around the threshold,
// so it can be chosen with margin, and the median time of one comparison.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { compareSignatures, imageSignature, tuning, type Signature } from '../../service/src/images/near-copy.js';
import { numberFlag, runTool, ToolUsageError } from './tool.js';

const HELP = `Usage: npm run eval:near-copy -- [--data DIR] [--negatives N] [--threshold T] [--set NAME=NUMBER]
  --data       grocery set with manifest.csv (default ../shared/data/grocery-dev)
  --negatives  compare an even sample of N different-item pairs instead of all of them (default: all)
  --threshold  decision threshold to report (default: the one in near-copy.ts, ${tuning.threshold})
  --set        NAME=NUMBER overrides one of near-copy.ts's tuning constants (repeatable), to try a change`;

interface Image {
  file: string;
  item: string;
  kind: string;
}

type Edit = (bytes: Buffer, width: number, height: number) => Promise<Buffer>;

const open = (bytes: Buffer) => sharp(bytes, { autoOrient: true });
const scaled = (bytes: Buffer, width: number, factor: number) =>
  open(bytes).resize(Math.max(1, Math.round(width * factor)));
/** Cuts the given fractions off the left, right, top and bottom. */
const cut = (l: number, r: number, t: number, b: number) => (bytes: Buffer, width: number, height: number) =>
  open(bytes).extract({
    left: Math.round(width * l),
    top: Math.round(height * t),
    width: Math.round(width * (1 - l - r)),
    height: Math.round(height * (1 - t - b)),
  });

const EDITS: Record<string, Edit> = {
  'resize 90% q80': (bytes, w) => scaled(bytes, w, 0.9).jpeg({ quality: 80 }).toBuffer(),
  'resize 50% q70': (bytes, w) => scaled(bytes, w, 0.5).jpeg({ quality: 70 }).toBuffer(),
  'resize 25% webp': (bytes, w) => scaled(bytes, w, 0.25).webp().toBuffer(),
  'crop 5% each side': (bytes, w, h) => cut(0.05, 0.05, 0.05, 0.05)(bytes, w, h).jpeg({ quality: 90 }).toBuffer(),
  'crop 10% left': (bytes, w, h) => cut(0.1, 0, 0, 0)(bytes, w, h).jpeg({ quality: 90 }).toBuffer(),
  'crop 10% right': (bytes, w, h) => cut(0, 0.1, 0, 0)(bytes, w, h).jpeg({ quality: 90 }).toBuffer(),
  'crop 10% top': (bytes, w, h) => cut(0, 0, 0.1, 0)(bytes, w, h).jpeg({ quality: 90 }).toBuffer(),
  'crop 10% bottom': (bytes, w, h) => cut(0, 0, 0, 0.1)(bytes, w, h).jpeg({ quality: 90 }).toBuffer(),
  'jpeg q40': (bytes) => open(bytes).jpeg({ quality: 40 }).toBuffer(),
  png: (bytes) => open(bytes).png().toBuffer(),
  'brightness +15%': (bytes) => open(bytes).modulate({ brightness: 1.15 }).jpeg({ quality: 90 }).toBuffer(),
  'contrast +15%': (bytes) =>
    open(bytes)
      .linear(1.15, -0.15 * 128)
      .jpeg({ quality: 90 })
      .toBuffer(),
  'crop 5% + resize 50% q70': async (bytes, w, h) => {
    const cropped = await cut(0.05, 0.05, 0.05, 0.05)(bytes, w, h).png().toBuffer();
    return scaled(cropped, w * 0.9, 0.5)
      .jpeg({ quality: 70 })
      .toBuffer();
  },
};

function readManifest(dir: string): Image[] {
  const file = path.join(dir, 'manifest.csv');
  if (!existsSync(file)) throw new Error(`${file} not found: pass --data DIR (the grocery-dev set)`);
  const [header = '', ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const at = (name: string) => header.split(',').indexOf(name);
  return lines.map((line) => {
    const cells = line.split(',');
    return { file: cells[at('file')]!, item: cells[at('item')]!, kind: cells[at('kind')]! };
  });
}

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))] ?? NaN;
};
const fixed = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'inf');
const percent = (hits: number, n: number) => `${((100 * hits) / n).toFixed(1)} %`;

const distance = (a: Signature, b: Signature) => compareSignatures(a, b).distance;

/**
 * Time of one comparison: each of `count` different pairs is timed 5 times and its fastest run kept, so the load of
 * other processes on shared cores drops out (it only ever adds time).
 */
function timeComparisons(signatures: Signature[], count: number): number[] {
  const fastest: number[] = [];
  for (let k = 0; k < count; k++) {
    const a = signatures[(k * 13) % signatures.length]!;
    const b = signatures[(k * 29 + 5) % signatures.length]!;
    let best = Infinity;
    for (let run = 0; run < 5; run++) {
      const start = performance.now();
      compareSignatures(a, b);
      best = Math.min(best, performance.now() - start);
    }
    fastest.push(best);
  }
  return fastest;
}

async function main(dir: string, negatives: number | undefined, threshold: number): Promise<void> {
  const images = readManifest(dir);
  const signatures: Signature[] = [];
  const signatureTimes: number[] = [];
  // Positives: both directions must flag (the caller may pass either image first), so the larger distance counts.
  const positives = new Map<string, number[]>(Object.keys(EDITS).map((name) => [name, []]));
  const misses: string[] = [];
  for (const image of images) {
    const bytes = readFileSync(path.join(dir, image.file));
    const start = performance.now();
    const original = await imageSignature(bytes);
    signatureTimes.push(performance.now() - start);
    signatures.push(original);
    const { width, height } = (await open(bytes).metadata()).autoOrient;
    for (const [name, edit] of Object.entries(EDITS)) {
      const copy = await imageSignature(await edit(bytes, width, height));
      const d = Math.max(distance(original, copy), distance(copy, original));
      positives.get(name)!.push(d);
      if (d > threshold) misses.push(`  ${fixed(d).padStart(5)}  ${name}: ${path.basename(image.file)}`);
    }
  }
  const pairs: Array<[number, number]> = [];
  const sameItem: number[] = [];
  for (let i = 0; i < images.length; i++) {
    for (let j = i + 1; j < images.length; j++) {
      if (images[i]!.item !== images[j]!.item) pairs.push([i, j]);
      else sameItem.push(distance(signatures[i]!, signatures[j]!));
    }
  }
  const stride = negatives && negatives < pairs.length ? pairs.length / negatives : 1;
  const sampled = pairs.filter((_, k) => Math.floor(k / stride) !== Math.floor((k - 1) / stride));
  const different = sampled.map(([i, j]) => ({ i, j, d: distance(signatures[i]!, signatures[j]!) }));
  const differentDistances = different.map((pair) => pair.d);

  const iconic = images.filter((image) => image.kind === 'iconic').length;
  console.log(`${images.length} images (${iconic} iconic, ${images.length - iconic} natural), threshold ${threshold}`);
  console.log('\nedited copy                 flagged    median    p95    max   (distance, larger of both directions)');
  for (const [name, ds] of positives) {
    const hits = ds.filter((d) => d <= threshold).length;
    console.log(
      `${name.padEnd(26)} ${percent(hits, ds.length).padStart(8)}  ${fixed(quantile(ds, 0.5)).padStart(7)}` +
        `  ${fixed(quantile(ds, 0.95)).padStart(5)}  ${fixed(quantile(ds, 1)).padStart(5)}`,
    );
  }
  console.log(`\nedited copies not flagged (${misses.length}):\n${misses.join('\n')}`);
  const line = (label: string, ds: number[]) =>
    console.log(
      `${label}: ${ds.length} pairs, flagged ${ds.filter((d) => d <= threshold).length}, distance min ` +
        `${fixed(quantile(ds, 0))}, p1 ${fixed(quantile(ds, 0.01))}, median ${fixed(quantile(ds, 0.5))}`,
    );
  console.log(`\n${stride > 1 ? `sampled ${different.length} of ${pairs.length}` : 'all'} different-item pairs`);
  line('different items', differentDistances);
  line('same item, different photos', sameItem);
  console.log('\nclosest different-item pairs:');
  for (const { i, j, d } of different.sort((x, y) => x.d - y.d).slice(0, 5)) {
    console.log(`  ${fixed(d).padStart(5)}  ${path.basename(images[i]!.file)}  ${path.basename(images[j]!.file)}`);
  }
  console.log('\nthreshold  worst edit flagged  resize 90% q80 flagged  different-item pairs flagged');
  for (const t of [6, 8, 10, 12, 14, 16, 18, 20, 24]) {
    const rates = [...positives.values()].map((ds) => ds.filter((d) => d <= t).length / ds.length);
    const resize = positives.get('resize 90% q80')!;
    console.log(
      `${String(t).padStart(9)}  ${percent(Math.min(...rates), 1).padStart(18)}  ` +
        `${percent(resize.filter((d) => d <= t).length, resize.length).padStart(22)}  ` +
        `${String(differentDistances.filter((d) => d <= t).length).padStart(28)}`,
    );
  }
  const times = timeComparisons(signatures, 500);
  console.log(
    `\nspeed: compareSignatures median ${quantile(times, 0.5).toFixed(2)} ms, p95 ${quantile(times, 0.95).toFixed(2)}` +
      ` ms, max ${quantile(times, 1).toFixed(2)} ms (500 pairs, fastest of 5 runs each); imageSignature median ` +
      `${quantile(signatureTimes, 0.5).toFixed(1)} ms (${images.length} files)`,
  );
}

await runTool(HELP, async () => {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: '../shared/data/grocery-dev' },
      negatives: { type: 'string' },
      threshold: { type: 'string' },
      set: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean' },
    },
  });
  for (const setting of values.set) {
    const [name = '', value] = setting.split('=');
    if (!(name in tuning) || !Number.isFinite(Number(value))) {
      throw new ToolUsageError(`--set wants NAME=NUMBER with NAME one of ${Object.keys(tuning).join(', ')}`);
    }
    tuning[name as keyof typeof tuning] = Number(value);
  }
  const threshold = values.threshold === undefined ? tuning.threshold : Number(values.threshold);
  if (!(threshold > 0)) throw new ToolUsageError(`--threshold must be a positive number (got ${values.threshold})`);
  const negatives = values.negatives === undefined ? undefined : numberFlag(values.negatives, 'negatives');
  await main(values.data, negatives, threshold);
});
