// Fits the confidence model of service/src/catalog/scoring.ts (a developer tool; reads ../shared by default):
//   npm run fit:confidence -- [--model PATH] [--data DIR]
// Runs every protocol of search-protocols.ts (each rotation, so every product is left out and given photos
// in turn) through the service's own search, collects the features it computes for each answer, and fits a
// logistic regression of "the first row is the right product" on them. It reports the cross-validated AUROC
// (folds = thirds of the products, so a product is never scored by a model that saw it) and the thresholds
// behind `match`: `confident` where at least 90 % of first rows are right, `none` below the point that hides
// at most 10 % of the right answers. It prints CONFIDENCE_MODEL to paste into scoring.ts.
import { readFileSync } from 'node:fs';
import { CONFIDENCE_MODEL } from '../../service/src/catalog/scoring.js';
import {
  auroc,
  evaluationArgs,
  PROTOCOLS,
  protocolOf,
  ServiceUnderTest,
  type ProtocolName,
} from './search-protocols.js';
import { runTool } from './tool.js';

const HELP = `Usage: npm run fit:confidence -- [--model PATH] [--data DIR]
  --model  ONNX model with its .json sidecar (default ../shared/models/mobilenetv2-int8-pretrained.onnx)
  --data   folder with manifest.csv (file,item,kind) and the images (default ../shared/data/grocery-dev)`;

/** Precision wanted among `confident` first rows, and the most right answers `none` may hide. */
const CONFIDENT_PRECISION = 0.9;
const NONE_HIDES_AT_MOST = 0.1;

interface Sample {
  protocol: ProtocolName;
  fold: number;
  features: number[];
  right: boolean;
}

interface Model {
  mean: number[];
  sd: number[];
  weights: number[];
  bias: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const predict = (m: Model, f: number[]) =>
  sigmoid(m.bias + f.reduce((sum, value, i) => sum + (m.weights[i]! * (value - m.mean[i]!)) / m.sd[i]!, 0));

/** Logistic regression on standardised features, batch gradient descent with a light L2 penalty. */
function fit(samples: Sample[]): Model {
  const d = samples[0]!.features.length;
  const mean = Array.from({ length: d }, (_, j) => samples.reduce((s, x) => s + x.features[j]!, 0) / samples.length);
  const sd = mean.map(
    (m, j) => Math.sqrt(samples.reduce((s, x) => s + (x.features[j]! - m) ** 2, 0) / samples.length) || 1,
  );
  const model: Model = { mean, sd, weights: new Array<number>(d).fill(0), bias: 0 };
  for (let step = 0; step < 4000; step++) {
    const gradient = new Array<number>(d).fill(0);
    let gradientBias = 0;
    for (const sample of samples) {
      const error = predict(model, sample.features) - (sample.right ? 1 : 0);
      sample.features.forEach((value, j) => (gradient[j]! += (error * (value - mean[j]!)) / sd[j]!));
      gradientBias += error;
    }
    model.weights = model.weights.map((w, j) => w - 0.5 * (gradient[j]! / samples.length + 0.001 * w));
    model.bias -= (0.5 * gradientBias) / samples.length;
  }
  return model;
}

async function main(): Promise<void> {
  const { model: modelPath, products } = evaluationArgs();
  const fold = new Map(products.map((p, i) => [p.item, i % 3]));
  const sut = await ServiceUnderTest.start(modelPath);
  const samples: Sample[] = [];
  try {
    for (const name of PROTOCOLS) {
      const rotations = name === 'mixed' || name === 'no-match' ? [0, 1, 2] : [0];
      for (const rotation of rotations) {
        const protocol = protocolOf(name, products, rotation);
        await sut.load(protocol);
        for (const query of protocol.queries) {
          const answer = await sut.service.catalog.search(readFileSync(query.file), { limit: 5, minConfidence: 0 });
          if (!answer.features || answer.results.length === 0) continue;
          samples.push({
            protocol: name,
            fold: fold.get(query.item)!,
            features: answer.features,
            right: query.inCatalog && answer.results[0]!.record.item_id === query.item,
          });
        }
      }
    }
  } finally {
    await sut.close();
  }

  // Cross-validated predictions: each third of the products scored by a model fitted on the other two.
  const predicted = samples.map(() => 0);
  for (let k = 0; k < 3; k++) {
    const model = fit(samples.filter((s) => s.fold !== k));
    samples.forEach((s, i) => {
      if (s.fold === k) predicted[i] = predict(model, s.features);
    });
  }
  const rows = samples.map((s, i) => ({ ...s, value: predicted[i]! }));
  console.log(`${samples.length} answers (${PROTOCOLS.join(', ')}; rotations for mixed and no-match)\n`);
  console.log('cross-validated AUROC (right first row vs wrong or absent):');
  console.log(`  all protocols: ${auroc(rows).toFixed(3)}`);
  for (const name of PROTOCOLS) console.log(`  ${name}: ${auroc(rows.filter((r) => r.protocol === name)).toFixed(3)}`);
  CONFIDENCE_MODEL.features.forEach((feature, j) => {
    const alone = auroc(samples.map((s) => ({ right: s.right, value: s.features[j]! })));
    console.log(`  feature ${feature} alone: ${alone.toFixed(3)}`);
  });

  // Thresholds from the cross-validated predictions.
  const byValue = [...rows].sort((a, b) => b.value - a.value);
  let confident = 1;
  let right = 0;
  byValue.forEach((row, i) => {
    if (row.right) right++;
    if (right / (i + 1) >= CONFIDENT_PRECISION && (byValue[i + 1]?.value ?? 0) < row.value) confident = row.value;
  });
  const rightValues = rows
    .filter((r) => r.right)
    .map((r) => r.value)
    .sort((a, b) => a - b);
  const none = rightValues[Math.floor(NONE_HIDES_AT_MOST * rightValues.length)] ?? 0;
  const share = (list: typeof rows, test: (v: number) => boolean) =>
    `${Math.round((100 * list.filter((r) => test(r.value)).length) / Math.max(1, list.length))}%`;
  const wrongOrAbsent = rows.filter((r) => !r.right);
  const certain = rows.filter((r) => r.value >= confident);
  console.log(`\nthresholds: confident >= ${confident.toFixed(3)}, none < ${none.toFixed(3)}`);
  console.log(
    `  confident: ${certain.length} answers, ${share(rows, (v) => v >= confident)} of all, ` +
      `${Math.round((100 * certain.filter((r) => r.right).length) / Math.max(1, certain.length))}% of them right`,
  );
  console.log(
    `  none: ${share(wrongOrAbsent, (v) => v < none)} of wrong or absent answers, ` +
      `${share(
        rows.filter((r) => r.right),
        (v) => v < none,
      )} of right ones`,
  );

  const model = fit(samples);
  const round = (xs: number[]) => xs.map((x) => Number(x.toPrecision(4)));
  console.log('\nCONFIDENCE_MODEL for service/src/catalog/scoring.ts:');
  console.log(
    JSON.stringify(
      {
        features: CONFIDENCE_MODEL.features,
        mean: round(model.mean),
        sd: round(model.sd),
        weights: round(model.weights),
        bias: Number(model.bias.toPrecision(4)),
        thresholds: { confident: Number(confident.toFixed(3)), none: Number(none.toFixed(3)) },
      },
      null,
      2,
    ),
  );
}

await runTool(HELP, main);
