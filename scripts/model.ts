// `npm run model`: gets the production model without Python. Downloads torchvision's EfficientNet-B0
// IMAGENET1K_V1 checkpoint (hash-checked) or reads one given with --checkpoint, converts it to ONNX
// (service/src/embedding/checkpoint) and writes NAME.onnx + NAME.json, then loads it once to prove it runs.
// Messages and progress on stderr, one JSON summary on stdout; exit 0 done, 1 failed, 2 wrong command line.
import { VARIABLES } from '../service/src/config.js';
import {
  convertCheckpoint,
  downloadModel,
  IMAGENET_WEIGHTS,
  writeRandomModel,
} from '../service/src/embedding/checkpoint/convert.js';
import { loadModel, ModelError } from '../service/src/embedding/model.js';
import { parseOptions, stringOption, UsageError, type CommandSpec } from './cli.js';

const SPEC: CommandSpec = {
  name: 'model',
  summary: 'Writes the EfficientNet-B0 embedding model (NAME.onnx and its sidecar NAME.json).',
  options: {
    checkpoint: { type: 'string', placeholder: 'FILE', description: 'convert this torch.save state_dict' },
    out: { type: 'string', placeholder: 'FILE', description: `the .onnx to write (${VARIABLES.modelPath.default})` },
    url: { type: 'string', placeholder: 'URL', description: 'download from this mirror instead of torchvision' },
    'random-weights': { type: 'boolean', description: 'seeded random weights, no checkpoint (speed tests only)' },
  },
};

const USAGE = `Usage: npm run model -- [--checkpoint FILE | --url URL | --random-weights] [--out FILE]

${SPEC.summary}
Without options it downloads ${IMAGENET_WEIGHTS.url}
(torchvision's IMAGENET1K_V1 weights), checks its SHA-256, converts it and deletes it.

${Object.entries(SPEC.options)
  .map(([name, option]) => `  --${`${name} ${option.placeholder ?? ''}`.padEnd(18)} ${option.description}`)
  .join('\n')}
  --help              show this text

See models/README.md for the sidecar and the other ways to get a model.
`;

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(SPEC, argv);
  if (options.help) {
    process.stdout.write(USAGE);
    return;
  }
  const checkpoint = stringOption(options.checkpoint);
  const url = stringOption(options.url);
  const random = options['random-weights'] === true;
  if ([checkpoint, url, random || undefined].filter((value) => value !== undefined).length > 1) {
    throw new UsageError('use only one of --checkpoint, --url and --random-weights');
  }
  if (url !== undefined && !/^https?:\/\/[^/]+\/./.test(url)) {
    throw new UsageError(`--url must be an http(s) URL of a file (got ${JSON.stringify(url)})`);
  }
  const out = stringOption(options.out) ?? VARIABLES.modelPath.default;
  if (!/\.onnx$/i.test(out)) throw new UsageError(`--out must name a .onnx file (got ${JSON.stringify(out)})`);

  const started = performance.now();
  const written = checkpoint
    ? await convertCheckpoint(checkpoint, out)
    : random
      ? await writeRandomModel(out)
      : await downloadModel(out, { url, progress: process.stderr });
  const seconds = (performance.now() - started) / 1000;
  const model = await loadModel(written.onnxPath, { threads: 1 });
  await model.close();
  process.stderr.write(
    `Wrote ${written.onnxPath} (${(written.bytes / 1e6).toFixed(1)} MB, weights ${written.weights}) and ` +
      `${written.sidecarPath} in ${seconds.toFixed(1)} s; onnxruntime loads it (${model.manifest.dim}-d).\n`,
  );
  process.stdout.write(`${JSON.stringify({ ...written, seconds: Number(seconds.toFixed(2)) })}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`npm run model: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  // Model problems and file-system failures (no space, no permission) are one line; anything else is a bug.
  const expected = error instanceof ModelError || typeof (error as NodeJS.ErrnoException).code === 'string';
  process.stderr.write(`${expected ? (error as Error).message : String((error as Error).stack)}\n`);
  process.exit(1);
});
