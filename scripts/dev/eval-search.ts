// Search quality through the real HTTP API (an evaluation, not a test; reads ../shared by default):
//   npm run eval:search -- [--model PATH] [--data DIR]
// Runs the protocols of search-protocols.ts against the service and prints, per protocol, how often the
// right product comes first and in the top 5 and how well `confidence` tells right first answers from wrong
// or out-of-catalog ones (AUROC), next to the best-image baseline (what the service did before item-level
// scoring: each item ranked by its closest image, the top cosine as the confidence), computed in the same
// run from the service's own /embed vectors. Also: how the `match` verdicts behave, and search latency.
import {
  auroc,
  PROTOCOL_TITLES,
  PROTOCOLS,
  protocolOf,
  evaluationArgs,
  ServiceUnderTest,
  type Protocol,
  type Query,
} from './search-protocols.js';
import { runTool } from './tool.js';

const HELP = `Usage: npm run eval:search -- [--model PATH] [--data DIR]
  --model  ONNX model with its .json sidecar (default ../shared/models/mobilenetv2-int8-pretrained.onnx)
  --data   folder with manifest.csv (file,item,kind; kind "iconic" = catalog picture) and the images
           (default ../shared/data/grocery-dev)`;

interface Outcome {
  query: Query;
  /** Item ids, best first. */
  ranked: string[];
  confidence: number;
  match?: string;
  ms?: number;
}

const dot = (a: Float32Array, b: Float32Array) => {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
};

/** The baseline: items by their closest reference image; confidence = that cosine. */
function bestImage(protocol: Protocol, vectors: Map<string, Float32Array>, query: Query): Outcome {
  const q = vectors.get(query.file)!;
  const best = new Map<string, number>();
  for (const ref of protocol.references) {
    const score = dot(q, vectors.get(ref.file)!);
    if (score > (best.get(ref.item) ?? -Infinity)) best.set(ref.item, score);
  }
  const ranked = [...best].sort((a, b) => b[1] - a[1]);
  return { query, ranked: ranked.map(([item]) => item), confidence: ranked[0]?.[1] ?? 0 };
}

interface Summary {
  queries: number;
  r1: number;
  r5: number;
  auroc: number;
}

function summarize(outcomes: Outcome[]): Summary {
  const inCatalog = outcomes.filter((o) => o.query.inCatalog);
  const first = inCatalog.filter((o) => o.ranked[0] === o.query.item).length;
  const top5 = inCatalog.filter((o) => o.ranked.slice(0, 5).includes(o.query.item)).length;
  return {
    queries: outcomes.length,
    r1: first / inCatalog.length,
    r5: top5 / inCatalog.length,
    auroc: auroc(
      outcomes.map((o) => ({ right: o.query.inCatalog && o.ranked[0] === o.query.item, value: o.confidence })),
    ),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const f2 = (x: number) => (Number.isNaN(x) ? '  -  ' : x.toFixed(2));

async function main(): Promise<void> {
  const { model, data, products } = evaluationArgs();
  const sut = await ServiceUnderTest.start(model);
  try {
    const files = new Set(products.flatMap((p) => [...p.catalog, ...p.photos]));
    const vectors = new Map<string, Float32Array>();
    for (const file of files) vectors.set(file, await sut.embed(file));
    const photos = products.reduce((n, p) => n + p.photos.length, 0);
    console.log(`model ${model}`);
    console.log(`data ${data}: ${products.length} products, ${photos} store photos\n`);
    const header = ['protocol', 'queries', 'ranking', 'r@1', 'r@5', 'AUROC'];
    const rows: string[][] = [];
    const verdicts: string[][] = [];
    const latencies: number[] = [];
    for (const name of PROTOCOLS) {
      const protocol = protocolOf(name, products);
      await sut.load(protocol);
      const service: Outcome[] = [];
      for (const query of protocol.queries) {
        const started = performance.now();
        const answer = await sut.search(query.file, 5);
        const ms = performance.now() - started;
        latencies.push(ms);
        service.push({
          query,
          ranked: answer.results.map((r) => r.item_id),
          confidence: answer.results[0]?.confidence ?? 0,
          match: answer.match,
          ms,
        });
      }
      const baseline = summarize(protocol.queries.map((query) => bestImage(protocol, vectors, query)));
      const ours = summarize(service);
      const title = PROTOCOL_TITLES[name];
      rows.push([title, String(ours.queries), 'best image', f2(baseline.r1), f2(baseline.r5), f2(baseline.auroc)]);
      rows.push(['', '', 'service', f2(ours.r1), f2(ours.r5), f2(ours.auroc)]);
      const right = service.filter((o) => o.query.inCatalog && o.ranked[0] === o.query.item);
      const absent = service.filter((o) => !o.query.inCatalog);
      const confident = service.filter((o) => o.match === 'confident');
      const share = (list: Outcome[], match: string) =>
        list.length === 0 ? '-' : `${Math.round((100 * list.filter((o) => o.match === match).length) / list.length)}%`;
      verdicts.push([
        title,
        `${confident.length}`,
        confident.length === 0
          ? '-'
          : `${Math.round((100 * confident.filter((o) => right.includes(o)).length) / confident.length)}%`,
        share(right, 'confident'),
        share(right, 'none'),
        share(absent, 'none'),
      ]);
    }
    printTable(header, rows);
    console.log('\n`match` verdicts (rows: protocols):');
    printTable(
      ['protocol', 'confident', 'of which right', 'right answers confident', 'right answers none', 'absent none'],
      verdicts,
    );
    console.log(
      `\nPOST /search over HTTP (whole request: upload, decode, two views embedded, search): median ` +
        `${median(latencies).toFixed(1)} ms over ${latencies.length} searches (sequential, one client).`,
    );
  } finally {
    await sut.close();
  }
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}

await runTool(HELP, main);
