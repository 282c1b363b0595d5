// What the HTTP benchmarks share: the real server started as its own process on 127.0.0.1 (embedded store in
// a given directory), its resident memory, the query photos of a data set, and the multipart body they travel in.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export const here = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const BOUNDARY = '----bench-http-boundary';

/** The --model and --data flags of the HTTP benchmarks (parseArgs options), defaulting to ../shared. */
export const dataSetOptions = {
  model: { type: 'string', default: path.join(here, '..', 'shared', 'models', 'efficientnet_b0-random.onnx') },
  data: { type: 'string', default: path.join(here, '..', 'shared', 'data', 'grocery-dev') },
} as const;

/** A multipart form with one `file` part, as a browser or curl sends it. */
export function multipartBody(bytes: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n` +
        'Content-Type: image/jpeg\r\n\r\n',
    ),
    bytes,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

export interface DataImage {
  file: string;
  item: string;
  kind: string;
}

/** The rows of a data set's manifest.csv (file,item,kind). */
export function dataImages(dataDir: string): DataImage[] {
  const rows = readFileSync(path.join(dataDir, 'manifest.csv'), 'utf8').trim().split('\n').slice(1);
  return rows.map((row) => {
    const [file, item, kind] = row.split(',');
    return { file: path.join(dataDir, file!), item: item!, kind: kind! };
  });
}

/** Up to `count` store photos of the data set as 1024×768 JPEGs (quality 85), the size a phone app sends. */
export function queryPhotos(images: DataImage[], count: number): Promise<Buffer[]> {
  return Promise.all(
    images
      .filter((image) => image.kind === 'natural')
      .slice(0, count)
      .map((image) => sharp(image.file).resize(1024, 768, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer()),
  );
}

/** Starts the server (`LOG_LEVEL=warn`) and waits until /health answers; `env` adds or overrides variables. */
export async function startServer(options: {
  dataDir: string;
  model: string;
  port: number;
  env?: Record<string, string>;
  /** Flags for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** The checkout whose server runs (default: this one). */
  root?: string;
  /** How long it may take to answer /health (default 2 minutes; a large embedded index loads longer). */
  timeoutMs?: number;
  /** Its name in errors (default: the server). */
  label?: string;
}): Promise<ChildProcess> {
  const { root = here, timeoutMs = 120_000, label = 'the server' } = options;
  const args = [...(options.nodeArgs ?? []), '--import', 'tsx', 'service/src/server.ts'];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATA_DIR: options.dataDir,
      MODEL_PATH: options.model,
      PORT: String(options.port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (child.exitCode !== null) throw new Error(`${label} exited: ${stderr.slice(-2000)}`);
    const up = await fetch(`http://127.0.0.1:${options.port}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return child;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`${label} did not start: ${stderr.slice(-2000)}`);
}

export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
