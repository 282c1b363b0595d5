// File helpers for the operations commands: nothing they write is ever half-written. Every file is
// written to a temporary name beside its target, hashed while it is written, fsynced, renamed into
// place, and its directory fsynced so the rename itself survives a power loss.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, lstat, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface Digest {
  sha256: string;
  size: number;
}

const tempName = (target: string) =>
  path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(4).toString('hex')}.tmp`);

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A pass-through stream that hashes and counts what flows through it. */
function hasher() {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  return { stream, digest: (): Digest => ({ sha256: hash.digest('hex'), size }) };
}

export async function sha256File(file: string): Promise<Digest> {
  const { stream, digest } = hasher();
  await pipeline(createReadStream(file), stream, async (source: AsyncIterable<unknown>) => {
    for await (const _ of source) void _;
  });
  return digest();
}

/**
 * Writes a stream to `target` atomically and returns its digest. With `expect`, a different size or
 * sha256 throws and leaves the target untouched.
 */
export async function writeStreamAtomic(
  source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  target: string,
  expect?: Partial<Digest> & { what?: string },
): Promise<Digest> {
  await mkdir(path.dirname(target), { recursive: true });
  const temp = tempName(target);
  try {
    const { stream, digest } = hasher();
    await pipeline(source, stream, createWriteStream(temp, { mode: 0o640 }));
    const result = digest();
    const what = expect?.what ?? target;
    if (expect?.size !== undefined && expect.size !== result.size) {
      throw new ChecksumError(`${what}: expected ${expect.size} bytes, got ${result.size}`);
    }
    if (expect?.sha256 && expect.sha256.toLowerCase() !== result.sha256) {
      throw new ChecksumError(`${what}: sha256 ${result.sha256} does not match the expected ${expect.sha256}`);
    }
    await fsyncFile(temp);
    await rename(temp, target);
    await fsyncDir(path.dirname(target));
    return result;
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export class ChecksumError extends Error {
  override name = 'ChecksumError';
}

/** Copies a file atomically, hashing it on the way; see writeStreamAtomic for `expect`. */
export function copyFileAtomic(
  source: string,
  target: string,
  expect?: Partial<Digest> & { what?: string },
): Promise<Digest> {
  return writeStreamAtomic(createReadStream(source), target, expect);
}

export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeStreamAtomic(Readable.from([Buffer.from(`${JSON.stringify(value, null, 1)}\n`)]), target);
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/**
 * Makes `target` the same file as `source` without copying when both sit on one filesystem (a hard
 * link: unchanged images cost no space in the next backup); copies atomically otherwise.
 */
export async function linkOrCopy(source: string, target: string): Promise<'linked' | 'copied'> {
  await mkdir(path.dirname(target), { recursive: true });
  try {
    await link(source, target);
    return 'linked';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw error;
  }
  await copyFileAtomic(source, target);
  return 'copied';
}

export async function fileStat(file: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const info = await stat(file);
    return info.isFile() ? { size: info.size, mtimeMs: Math.trunc(info.mtimeMs) } : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw error;
  }
}

/** Whether a directory entry exists at `file` (a dangling link counts). */
export async function pathExists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

export const isNotFound = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/** Runs `work` over `items` with at most `limit` in flight, in order of start. */
export async function forEachLimited<T>(
  items: Iterable<T>,
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failed: unknown;
  const lane = async () => {
    for (let next = iterator.next(); !next.done && failed === undefined; next = iterator.next()) {
      try {
        await work(next.value);
      } catch (error) {
        failed ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  if (failed !== undefined) throw failed as Error;
}

/** Paths from manifests and stores are resolved by the same rule as the service's image files. */

/** `relative` resolved under `root`; refuses absolute paths and any path that would leave `root`. */
export function insideRoot(root: string, relative: string, what = root): string {
  const resolved = path.resolve(root, relative);
  if (path.isAbsolute(relative) || !resolved.startsWith(path.resolve(root) + path.sep)) {
    throw new Error(`Refusing a path outside ${what}: ${JSON.stringify(relative)}`);
  }
  return resolved;
}
