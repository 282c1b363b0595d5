// From torchvision's EfficientNet-B0 checkpoint to the service's model files (NAME.onnx + NAME.json), in
// TypeScript, so `npm start` gets the real model without Python: `npm run model` and, when MODEL_PATH is
// the default and missing, `npm start` download torchvision's own IMAGENET1K_V1 file, verify and convert it.
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { VARIABLES } from '../../config.js';
import { ModelError, sidecarPathOf } from '../model.js';
import { downloadVerified, type DownloadOptions } from './download.js';
import { buildOnnx, EMBEDDING_DIM, INPUT_NAME, INPUT_SIDE, OUTPUT_NAME, randomStateDict } from './efficientnet-b0.js';
import { CheckpointError } from './errors.js';
import { readStateDict, type StateDict } from './state-dict.js';

/** torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1 (torchvision/models/efficientnet.py). */
export const IMAGENET_WEIGHTS = {
  name: 'IMAGENET1K_V1',
  url: 'https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth',
  sha256Prefix: '3dd342df',
} as const;

/** Preprocessing of the sidecar: torchvision's ImageNet evaluation transform for this model. */
const PREPROCESS = { resize: 256, crop: INPUT_SIDE, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
const CONVERTER = 'erp-image-search service/src/embedding/checkpoint (batch norm folded)';

/** The three ways to a model without this machine downloading it; every download failure names them. */
export const OFFLINE_HELP =
  'Without internet access, get the model one of three ways: (1) download ' +
  `${IMAGENET_WEIGHTS.url} on any machine, copy it here and run \`npm run model -- --checkpoint FILE\`; ` +
  '(2) run `/usr/bin/python3 models/export.py` where torch and torchvision are installed; (3) set MODEL_PATH ' +
  'to an existing model (NAME.onnx with its sidecar NAME.json). See models/README.md.';

export interface ModelWritten {
  onnxPath: string;
  sidecarPath: string;
  /** SHA-256 and size of the .onnx. */
  sha256: string;
  bytes: number;
  weights: string;
}

interface Provenance {
  weights: string;
  /** Where the weights came from: a URL, a checkpoint's file name, or null for generated weights. */
  source: string | null;
  checkpointSha256: string | null;
}

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A checkpoint whose SHA-256 starts like torchvision's file name says is torchvision's IMAGENET1K_V1. */
const weightsName = (checkpointSha256: string) =>
  checkpointSha256.startsWith(IMAGENET_WEIGHTS.sha256Prefix) ? IMAGENET_WEIGHTS.name : 'custom';

async function writeSynced(file: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(file, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes NAME.onnx and NAME.json so that a crash never leaves a model that loads half-written or with
 * another model's sidecar: both go to fsynced temporary files; then any old .onnx is removed, the sidecar
 * renamed into place, and the .onnx last (npm start rebuilds a missing .onnx; it never trusts a lone one).
 */
async function installModel(onnxPath: string, model: Uint8Array, provenance: Provenance): Promise<ModelWritten> {
  const sha256 = sha256Hex(model);
  const sidecarPath = sidecarPathOf(onnxPath);
  const dir = path.dirname(onnxPath);
  await mkdir(dir, { recursive: true });
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const temps = [onnxPath, sidecarPath].map((file) => path.join(dir, `.${path.basename(file)}.${tag}`));
  try {
    await writeSynced(temps[0], model);
    await writeSynced(temps[1], `${JSON.stringify(sidecarFor(provenance, sha256), null, 2)}\n`);
    await rm(onnxPath, { force: true });
    await rename(temps[1], sidecarPath);
    await rename(temps[0], onnxPath);
    const directory = await open(dir, 'r');
    await directory.sync().finally(() => directory.close());
  } finally {
    await Promise.all(temps.map((temp) => rm(temp, { force: true })));
  }
  return { onnxPath, sidecarPath, sha256, bytes: model.length, weights: provenance.weights };
}

/**
 * The model's name by its weights (models/export.py names them alike): collections are named after it, so
 * random or custom weights never share a collection name with the ImageNet model (the sha256 in the sidecar
 * tells any two files apart; the name keeps a switch between them a migration to another collection).
 */
export function modelNameFor(weights: string): string {
  if (weights === IMAGENET_WEIGHTS.name) return 'efficientnet_b0';
  return weights.startsWith('random') ? 'efficientnet_b0_random' : 'efficientnet_b0_custom';
}

/** The sidecar models/export.py writes, with where the weights came from instead of torch's versions. */
function sidecarFor(provenance: Provenance, sha256: string) {
  return {
    name: modelNameFor(provenance.weights),
    dim: EMBEDDING_DIM,
    input: INPUT_NAME,
    output: OUTPUT_NAME,
    ...PREPROCESS,
    weights: provenance.weights,
    source: provenance.source,
    checkpoint_sha256: provenance.checkpointSha256,
    converter: CONVERTER,
    sha256,
  };
}

/** The .onnx depends only on the weights (no paths, no clock): the same checkpoint gives the same file. */
function build(weights: StateDict, what: string, provenance: Provenance): Uint8Array {
  const metadata: Record<string, string> = { weights: provenance.weights };
  if (provenance.checkpointSha256) metadata.checkpoint_sha256 = provenance.checkpointSha256;
  return buildOnnx(weights, what, { metadata });
}

/** Converts a torchvision EfficientNet-B0 state_dict saved with torch.save into `onnxPath` + sidecar. */
export async function convertCheckpoint(
  checkpoint: string,
  onnxPath: string,
  options: { source?: string } = {},
): Promise<ModelWritten> {
  let bytes: Buffer;
  try {
    bytes = await readFile(checkpoint);
  } catch (error) {
    throw new CheckpointError(`Cannot read the checkpoint ${checkpoint}: ${(error as Error).message}.`);
  }
  const checkpointSha256 = sha256Hex(bytes);
  const provenance = {
    weights: weightsName(checkpointSha256),
    source: options.source ?? path.basename(checkpoint),
    checkpointSha256,
  };
  const model = build(readStateDict(bytes, checkpoint), checkpoint, provenance);
  return installModel(onnxPath, model, provenance);
}

/** Same architecture with seeded random weights (no checkpoint): for speed tests and offline builds only. */
export async function writeRandomModel(onnxPath: string, seed = 0): Promise<ModelWritten> {
  const provenance = { weights: `random(seed=${seed})`, source: null, checkpointSha256: null };
  return installModel(onnxPath, build(randomStateDict(seed), 'random weights', provenance), provenance);
}

export interface DownloadModelOptions extends Omit<DownloadOptions, 'help'> {
  /** Default: torchvision's IMAGENET1K_V1 checkpoint. */
  url?: string;
}

/** Downloads and verifies the checkpoint (beside `onnxPath`, deleted afterwards) and converts it. */
export async function downloadModel(onnxPath: string, options: DownloadModelOptions = {}): Promise<ModelWritten> {
  const url = options.url ?? IMAGENET_WEIGHTS.url;
  const dir = path.dirname(onnxPath);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `.${path.posix.basename(new URL(url).pathname)}.${randomBytes(4).toString('hex')}.part`);
  try {
    await downloadVerified(url, file, { ...options, help: OFFLINE_HELP });
    return await convertCheckpoint(file, onnxPath, { source: url });
  } finally {
    await rm(file, { force: true });
  }
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

export interface EnsureModelOptions extends DownloadModelOptions {
  log: { info(message: string): void };
}

/** Downloads and converts the model when `onnxPath` is missing; returns whether it did. */
export async function ensureModel(onnxPath: string, options: EnsureModelOptions): Promise<boolean> {
  if (await exists(onnxPath)) return false;
  options.log.info(
    `${onnxPath} is missing: downloading torchvision's EfficientNet-B0 ImageNet weights and converting them ` +
      '(once; the same as `npm run model`).',
  );
  const started = Date.now();
  const written = await downloadModel(onnxPath, { progress: process.stderr, ...options }).catch((error: unknown) => {
    if (error instanceof ModelError || typeof (error as NodeJS.ErrnoException).code !== 'string') throw error;
    // No space or no permission where the model goes: a start-up failure with a way out, not a crash.
    throw new ModelError(
      `Cannot write the model beside ${onnxPath}: ${(error as Error).message}. Make that directory writable, or ` +
        'write the model elsewhere with `npm run model -- --out FILE` and set MODEL_PATH=FILE.',
    );
  });
  options.log.info(
    `Wrote ${written.onnxPath} (${(written.bytes / 1e6).toFixed(1)} MB, weights ${written.weights}, sha256 ` +
      `${written.sha256}) and its sidecar in ${((Date.now() - started) / 1000).toFixed(1)} s.`,
  );
  return true;
}

/** For `npm start`: gets the model only when MODEL_PATH is left at its default and the file is missing. */
export async function ensureDefaultModel(modelPath: string, options: EnsureModelOptions): Promise<void> {
  if (modelPath === VARIABLES.modelPath.default) await ensureModel(modelPath, options);
}
