// An embedding model = NAME.onnx + NAME.json (the sidecar). Loading checks the sidecar against the
// session itself, so a wrong or swapped file fails at start with a message naming file and mismatch.
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import type { PreprocessSpec } from '../images/preprocess.js';

export class ModelError extends Error {
  override name = 'ModelError';
}

export interface ModelManifest extends PreprocessSpec {
  name: string;
  dim: number;
  input: string;
  output: string;
}

export const sidecarPathOf = (onnxPath: string) => onnxPath.replace(/\.onnx$/i, '') + '.json';

const isTriple = (value: unknown): value is [number, number, number] =>
  Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number' && Number.isFinite(v));

export async function readManifest(onnxPath: string): Promise<ModelManifest> {
  const path = sidecarPathOf(onnxPath);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (error as Error).message;
    throw new ModelError(`Cannot read the model sidecar ${path}: ${reason}. Every model needs NAME.json beside NAME.onnx (see models/README.md).`);
  }
  const problems: string[] = [];
  const positiveInt = (key: string) => {
    if (!Number.isInteger(parsed[key]) || (parsed[key] as number) <= 0) problems.push(`"${key}" must be a positive integer`);
  };
  for (const key of ['name', 'input', 'output']) {
    if (typeof parsed[key] !== 'string' || parsed[key] === '') problems.push(`"${key}" must be a non-empty string`);
  }
  ['dim', 'resize', 'crop'].forEach(positiveInt);
  if (!isTriple(parsed.mean)) problems.push('"mean" must be three numbers');
  if (!isTriple(parsed.std) || parsed.std.some((v) => v <= 0)) problems.push('"std" must be three positive numbers');
  if (problems.length === 0 && (parsed.crop as number) > (parsed.resize as number)) problems.push('"crop" cannot exceed "resize"');
  if (problems.length > 0) throw new ModelError(`Invalid model sidecar ${path}: ${problems.join('; ')}.`);
  return parsed as unknown as ModelManifest;
}

export interface OnnxModel {
  readonly manifest: ModelManifest;
  readonly path: string;
  /** Runs one batch of CHW tensors; returns one unit-length vector per input. */
  run(tensors: Float32Array[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export function l2Normalize(vector: Float32Array): Float32Array {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  if (!(norm > 0) || !Number.isFinite(norm)) return vector;
  for (let i = 0; i < vector.length; i++) vector[i] = vector[i] / norm;
  return vector;
}

export async function loadModel(onnxPath: string, options: { threads: number }): Promise<OnnxModel> {
  const manifest = await readManifest(onnxPath);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    throw new ModelError(`Cannot load the ONNX model ${onnxPath}: ${(error as Error).message}`);
  }
  const mismatch = (what: string) =>
    new ModelError(`Model ${onnxPath} does not match its sidecar ${sidecarPathOf(onnxPath)}: ${what}.`);
  if (!session.inputNames.includes(manifest.input)) {
    throw mismatch(`the sidecar names input "${manifest.input}" but the model's inputs are ${JSON.stringify(session.inputNames)}`);
  }
  if (!session.outputNames.includes(manifest.output)) {
    throw mismatch(`the sidecar names output "${manifest.output}" but the model's outputs are ${JSON.stringify(session.outputNames)}`);
  }
  const side = manifest.crop;
  const area = 3 * side * side;

  const run = async (tensors: Float32Array[]): Promise<Float32Array[]> => {
    const batch = new Float32Array(area * tensors.length);
    tensors.forEach((tensor, i) => batch.set(tensor, i * area));
    const feeds = { [manifest.input]: new ort.Tensor('float32', batch, [tensors.length, 3, side, side]) };
    const result = await session.run(feeds, [manifest.output]);
    const output = result[manifest.output]!;
    const width = output.dims[output.dims.length - 1];
    if (output.dims.length !== 2 || output.dims[0] !== tensors.length || width !== manifest.dim) {
      throw mismatch(`the sidecar says ${manifest.dim}-d but the model outputs shape [${output.dims.join(', ')}]`);
    }
    const data = output.data as Float32Array;
    return tensors.map((_, i) => l2Normalize(data.slice(i * width, (i + 1) * width)));
  };

  // One real inference at load: proves the output width and warms the session before the first request.
  await run([new Float32Array(area)]);
  return { manifest, path: onnxPath, run, close: () => session.release() };
}
