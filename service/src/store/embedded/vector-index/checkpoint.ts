// Index checkpoints: a vector index saved to one file, so that a restart loads it in a fraction of a
// second instead of re-reading and re-clustering every vector. A checkpoint is only a cache of what the
// database holds: the database records each file's size and SHA-256, and a file is parsed only after both
// match; anything wrong (short, changed, another version, inconsistent sections) means "rebuild from the
// database", never a crash. The file is written to a temporary name, fsynced and renamed.
//
// Layout (little-endian): magic "ERPVIDX1", u32 format, u32 dim, u32 width, u32 clusters, u32 count,
// u32 trainedAt, then 8-aligned sections: centroid codes (clusters × width i8), centroid scales
// (clusters f32), keys (count f64), scales (count f32), clusters of the vectors (count i32), codes
// (count × width i8).
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { codeWidth, type IndexSnapshot } from './vector-index.js';

const MAGIC = Buffer.from('ERPVIDX1', 'latin1');
const FORMAT = 1;
const HEADER = MAGIC.length + 6 * 4;
/** Bytes hashed per step, so that hashing a large checkpoint never holds the event loop for long. */
const HASH_STEP = 8 * 1024 * 1024;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface CheckpointFile {
  bytes: number;
  sha256: string;
}

const pad8 = (n: number) => Math.ceil(n / 8) * 8;

function sections(snapshot: IndexSnapshot): Array<ArrayBufferView> {
  return [
    snapshot.centroidCodes,
    snapshot.centroidScales,
    snapshot.keys,
    snapshot.scales,
    snapshot.lists,
    snapshot.codes,
  ];
}

/** The file's bytes as a list of buffers (views of the snapshot's arrays, no copy), written in order. */
export function encodeCheckpointParts(snapshot: IndexSnapshot): Buffer[] {
  const header = Buffer.alloc(pad8(HEADER));
  MAGIC.copy(header, 0);
  const fields = [
    FORMAT,
    snapshot.dim,
    codeWidth(snapshot.dim),
    snapshot.centroidScales.length,
    snapshot.keys.length,
    snapshot.trainedAt,
  ];
  fields.forEach((value, i) => header.writeUInt32LE(value, MAGIC.length + i * 4));
  const parts: Buffer[] = [header];
  for (const section of sections(snapshot)) {
    parts.push(Buffer.from(section.buffer, section.byteOffset, section.byteLength));
    const padding = pad8(section.byteLength) - section.byteLength;
    if (padding > 0) parts.push(Buffer.alloc(padding));
  }
  return parts;
}

/** Parses a verified checkpoint; throws CheckpointError when the content is not a consistent index. */
export function decodeCheckpoint(data: Buffer): IndexSnapshot {
  if (data.length < HEADER || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new CheckpointError('not an index checkpoint');
  }
  const [format, dim, width, clusters, count, trainedAt] = Array.from({ length: 6 }, (_, i) =>
    data.readUInt32LE(MAGIC.length + i * 4),
  ) as [number, number, number, number, number, number];
  if (format !== FORMAT) throw new CheckpointError(`checkpoint format ${format}, this version reads ${FORMAT}`);
  if (dim < 1 || width !== codeWidth(dim)) throw new CheckpointError(`bad widths ${dim}/${width}`);
  let at = pad8(HEADER);
  const take = <T>(bytes: number, make: (buffer: ArrayBuffer, offset: number) => T): T => {
    if (at + bytes > data.length) throw new CheckpointError('checkpoint is truncated');
    const offset = data.byteOffset + at;
    at += pad8(bytes);
    // Sections start 8-aligned in the file; a view needs them aligned in memory too, else copy.
    if (offset % 8 === 0) return make(data.buffer as ArrayBuffer, offset);
    const copy = new Uint8Array(bytes);
    copy.set(new Uint8Array(data.buffer, offset, bytes));
    return make(copy.buffer, 0);
  };
  const snapshot: IndexSnapshot = {
    dim,
    trainedAt,
    centroidCodes: take(clusters * width, (b, o) => new Int8Array(b, o, clusters * width)),
    centroidScales: take(clusters * 4, (b, o) => new Float32Array(b, o, clusters)),
    keys: take(count * 8, (b, o) => new Float64Array(b, o, count)),
    scales: take(count * 4, (b, o) => new Float32Array(b, o, count)),
    lists: take(count * 4, (b, o) => new Int32Array(b, o, count)),
    codes: take(count * width, (b, o) => new Int8Array(b, o, count * width)),
  };
  if (at !== data.length) throw new CheckpointError('checkpoint has trailing bytes');
  return snapshot;
}

async function sha256Sliced(parts: Buffer[]): Promise<string> {
  const hash = createHash('sha256');
  for (const part of parts) {
    for (let at = 0; at < part.length; at += HASH_STEP) {
      hash.update(part.subarray(at, at + HASH_STEP));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return hash.digest('hex');
}

/** Writes `parts` to `file` durably (temp + fsync + rename + directory fsync); removes the temp on failure. */
export async function writeCheckpoint(file: string, parts: Buffer[]): Promise<CheckpointFile> {
  const sha256 = await sha256Sliced(parts);
  const bytes = parts.reduce((sum, part) => sum + part.length, 0);
  const temp = `${file}.tmp`;
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o640);
    try {
      for (const part of parts) await handle.writeFile(part); // appends: each call writes all of `part`
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await syncDirectory(path.dirname(file));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return { bytes, sha256 };
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads a checkpoint and checks it against what the database recorded before parsing anything. */
export async function readCheckpoint(file: string, expected: CheckpointFile): Promise<IndexSnapshot> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (error) {
    throw new CheckpointError(`cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  if (data.length !== expected.bytes) {
    throw new CheckpointError(`it has ${data.length} bytes, ${expected.bytes} were recorded`);
  }
  if ((await sha256Sliced([data])) !== expected.sha256) throw new CheckpointError('its SHA-256 does not match');
  return decodeCheckpoint(data);
}
