// An embedding model = NAME.onnx + NAME.json (the sidecar). Loading checks the sidecar against the
// session itself, so a wrong or swapped file fails at start with a message naming file and mismatch.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { DecodedImage, PreprocessSpec } from '../images/preprocess.js';
import { toTensor } from '../images/tensor.js';

export class ModelError extends Error {
  override name = 'ModelError';
}

export interface ModelManifest extends PreprocessSpec {
  name: string;
  dim: number;
  input: string;
  output: string;
  /**
   * SHA-256 of the .onnx file: the model's identity by its weights (one name and width may come with
   * random or trained weights). Computed at load; a sidecar that records another value describes another file.
   */
  sha256: string;
}

/** SHA-256 (hex) of a file, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export const sidecarPathOf = (onnxPath: string) => onnxPath.replace(/\.onnx$/i, '') + '.json';

const isTriple = (value: unknown): value is [number, number, number] =>
  Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number' && Number.isFinite(v));

export async function readManifest(onnxPath: string): Promise<ModelManifest> {
  const path = sidecarPathOf(onnxPath);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (error as Error).message;
    throw new ModelError(
      `Cannot read the model sidecar ${path}: ${reason}. Every model needs NAME.json beside NAME.onnx (see ` +
        `models/README.md).`,
    );
  }
  const problems: string[] = [];
  const positiveInt = (key: string) => {
    if (!Number.isInteger(parsed[key]) || (parsed[key] as number) <= 0)
      problems.push(`"${key}" must be a positive integer`);
  };
  for (const key of ['name', 'input', 'output']) {
    if (typeof parsed[key] !== 'string' || parsed[key] === '') problems.push(`"${key}" must be a non-empty string`);
  }
  ['dim', 'resize', 'crop'].forEach(positiveInt);
  if (!isTriple(parsed.mean)) problems.push('"mean" must be three numbers');
  if (!isTriple(parsed.std) || parsed.std.some((v) => v <= 0)) problems.push('"std" must be three positive numbers');
  if (problems.length === 0 && (parsed.crop as number) > (parsed.resize as number))
    problems.push('"crop" cannot exceed "resize"');
  if (parsed.sha256 !== undefined && (typeof parsed.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.sha256)))
    problems.push('"sha256" must be 64 lowercase hex digits (or absent)');
  if (problems.length > 0) throw new ModelError(`Invalid model sidecar ${path}: ${problems.join('; ')}.`);
  // Hashed every time (about 0.1 s for EfficientNet-B0's 21 MB): a sidecar written by hand or by an older
  // export has no sha256, and one copied beside another .onnx has the wrong one; both are caught here.
  let sha256: string;
  try {
    sha256 = await fileSha256(onnxPath);
  } catch (error) {
    throw new ModelError(`Cannot read the model ${onnxPath}: ${(error as Error).message}.`);
  }
  if (parsed.sha256 !== undefined && parsed.sha256 !== sha256) {
    throw new ModelError(
      `Model ${onnxPath} does not match its sidecar ${path}: the sidecar records sha256 ${parsed.sha256 as string} ` +
        `but the file's is ${sha256}. Copy the .onnx and its .json together (or export the model again).`,
    );
  }
  return { ...(parsed as unknown as ModelManifest), sha256 };
}

export interface OnnxModel {
  readonly manifest: ModelManifest;
  readonly path: string;
  /**
   * Runs one batch; returns one unit-length vector per input. An input is a CHW tensor, or an image decoded
   * for the model (normalised in the inference worker when it is alone in its batch, see images/tensor.js).
   */
  run(inputs: ModelInput[]): Promise<Float32Array[]>;
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

interface WorkerReply {
  id?: number;
  ready?: boolean;
  error?: string;
  data?: Float32Array;
  dims?: number[];
  inputNames?: string[];
  outputNames?: string[];
}

/** A CHW float32 tensor, or the crop's uint8 pixels (preprocess.ts decodeForModel). */
export type ModelInput = Float32Array | DecodedImage;

/** What a worker is sent: a batch of tensors, or one image's pixels with how to normalise them. */
type Payload =
  | { data: Float32Array; dims: number[] }
  | { pixels: Uint8Array; channels: number; spec: { crop: number; mean: number[]; std: number[] } };

interface Job {
  id: number;
  payload: Payload;
  resolve: (reply: { data: Float32Array; dims: number[] }) => void;
  reject: (error: Error) => void;
}

/** A fixed set of inference workers, each with its own session; jobs wait for a free one. */
class InferencePool {
  /** Workers whose session loaded; only these are replaced when they die. */
  private readonly members = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly waiting: Job[] = [];
  private nextId = 0;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly threads: number,
    private readonly names: { input: string; output: string },
  ) {}

  static async start(
    path: string,
    options: { threads: number; workers: number },
    names: { input: string; output: string },
  ) {
    const pool = new InferencePool(path, options.threads, names);
    const started = await Promise.allSettled(Array.from({ length: options.workers }, () => pool.spawn()));
    const failure = started.find((result) => result.status === 'rejected');
    if (failure) {
      await pool.close();
      throw failure.reason;
    }
    return { pool, ...(started[0] as PromiseFulfilledResult<{ inputNames: string[]; outputNames: string[] }>).value };
  }

  private spawn(): Promise<{ inputNames: string[]; outputNames: string[] }> {
    const worker = new Worker(new URL('./inference-worker.js', import.meta.url), {
      workerData: { path: this.path, threads: this.threads },
    });
    return new Promise((resolve, reject) => {
      worker.once('message', (reply: WorkerReply) => {
        if (!reply.ready || this.closed) {
          void worker.terminate();
          return reject(
            new ModelError(
              this.closed
                ? 'The model was closed while loading.'
                : `Cannot load the ONNX model ${this.path}: ${reply.error}`,
            ),
          );
        }
        worker.on('message', (message: WorkerReply) => this.finish(worker, message));
        this.members.add(worker);
        this.release(worker);
        resolve({ inputNames: reply.inputNames!, outputNames: reply.outputNames! });
      });
      worker.on('error', (error) => this.lost(worker, error));
      worker.on('exit', (code) => this.lost(worker, new Error(`inference worker exited with code ${code}`)));
    });
  }

  run(payload: Payload): Promise<{ data: Float32Array; dims: number[] }> {
    if (this.closed) return Promise.reject(new Error('The model is closed.'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, payload, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.waiting.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.waiting.shift()!;
      this.busy.set(worker, job);
      // A tensor is ours alone: moved, not copied. Pixels are copied (sharp's output buffer is not ours to move).
      const transfer = 'data' in job.payload ? [job.payload.data.buffer as ArrayBuffer] : [];
      worker.postMessage({ id: job.id, ...this.names, ...job.payload }, transfer);
    }
  }

  private release(worker: Worker): void {
    this.idle.push(worker);
    this.dispatch();
  }

  private finish(worker: Worker, reply: WorkerReply): void {
    const job = this.busy.get(worker);
    if (!job || job.id !== reply.id) return;
    this.busy.delete(worker);
    if (reply.error) job.reject(new Error(`Inference failed: ${reply.error}`));
    else job.resolve({ data: reply.data!, dims: reply.dims! });
    this.release(worker);
  }

  /** A worker died (out of memory, native crash): fail its job and start a replacement. */
  private lost(worker: Worker, error: Error): void {
    const job = this.busy.get(worker);
    this.busy.delete(worker);
    const index = this.idle.indexOf(worker);
    if (index >= 0) this.idle.splice(index, 1);
    job?.reject(error);
    if (this.closed || !this.members.delete(worker)) return;
    this.spawn().catch((spawnError: unknown) => {
      // With no worker left, waiting jobs would never run: fail them instead.
      if (this.members.size === 0) for (const waiting of this.waiting.splice(0)) waiting.reject(spawnError as Error);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.members];
    this.members.clear();
    this.idle.length = 0;
    for (const job of this.waiting.splice(0)) job.reject(new Error('The model was closed.'));
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/**
 * Loads the model in `workers` inference threads (one session each, `threads` intra-op threads) and
 * checks it against its sidecar with one real inference.
 */
export async function loadModel(onnxPath: string, options: { threads: number; workers?: number }): Promise<OnnxModel> {
  const manifest = await readManifest(onnxPath);
  const { pool, inputNames, outputNames } = await InferencePool.start(
    onnxPath,
    { threads: options.threads, workers: options.workers ?? 1 },
    { input: manifest.input, output: manifest.output },
  );
  const mismatch = (what: string) =>
    new ModelError(`Model ${onnxPath} does not match its sidecar ${sidecarPathOf(onnxPath)}: ${what}.`);
  try {
    if (!inputNames.includes(manifest.input)) {
      throw mismatch(
        `the sidecar names input "${manifest.input}" but the model's inputs are ${JSON.stringify(inputNames)}`,
      );
    }
    if (!outputNames.includes(manifest.output)) {
      throw mismatch(
        `the sidecar names output "${manifest.output}" but the model's outputs are ${JSON.stringify(outputNames)}`,
      );
    }
  } catch (error) {
    await pool.close();
    throw error;
  }
  const side = manifest.crop;
  const area = 3 * side * side;

  const spec = { crop: side, mean: [...manifest.mean], std: [...manifest.std] };
  const payloadOf = (inputs: ModelInput[]): Payload => {
    const [only] = inputs;
    if (inputs.length === 1 && only && !(only instanceof Float32Array)) return { ...only, spec };
    const batch = new Float32Array(area * inputs.length);
    inputs.forEach((input, i) => {
      if (input instanceof Float32Array) batch.set(input, i * area);
      else toTensor(input.pixels, input.channels, spec, batch.subarray(i * area, (i + 1) * area));
    });
    return { data: batch, dims: [inputs.length, 3, side, side] };
  };
  const run = async (inputs: ModelInput[]): Promise<Float32Array[]> => {
    const output = await pool.run(payloadOf(inputs));
    const width = output.dims[output.dims.length - 1];
    if (output.dims.length !== 2 || output.dims[0] !== inputs.length || width !== manifest.dim) {
      throw mismatch(`the sidecar says ${manifest.dim}-d but the model outputs shape [${output.dims.join(', ')}]`);
    }
    return inputs.map((_, i) => l2Normalize(output.data.slice(i * width, (i + 1) * width)));
  };

  // One real inference at load: proves the output width and warms the session before the first request.
  try {
    await run([new Float32Array(area)]);
  } catch (error) {
    await pool.close();
    throw error;
  }
  return { manifest, path: onnxPath, run, close: () => pool.close() };
}
