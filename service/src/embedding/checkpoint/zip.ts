// A small, strict reader for the zip archives torch.save writes (stored entries, zip64 fields when large).
// Only what a checkpoint needs: the central directory, stored or deflated entries and their CRC-32.
// Every offset and length is checked against the file, so a truncated or hostile archive fails with
// CheckpointError and never reads outside the buffer.
import { inflateRawSync } from 'node:zlib';
import { CheckpointError } from './errors.js';

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;

interface Entry {
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  headerOffset: number;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes: Uint8Array): number {
  let crc = U32_MAX;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ U32_MAX) >>> 0;
}

export class ZipArchive {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly bytes: Buffer,
    private readonly what: string,
  ) {
    const { count, offset } = this.directory();
    let at = offset;
    for (let i = 0; i < count; i++) {
      this.need(at, 46, 'a central directory entry');
      if (bytes.readUInt32LE(at) !== CENTRAL) throw this.broken(`central directory entry ${i} has a bad signature`);
      const flags = bytes.readUInt16LE(at + 8);
      if (flags & 1) throw this.broken('it is encrypted');
      const nameLength = bytes.readUInt16LE(at + 28);
      const extraLength = bytes.readUInt16LE(at + 30);
      const commentLength = bytes.readUInt16LE(at + 32);
      this.need(at + 46, nameLength + extraLength, 'an entry name');
      const name = bytes.toString('utf8', at + 46, at + 46 + nameLength);
      const entry: Entry = {
        method: bytes.readUInt16LE(at + 10),
        crc: bytes.readUInt32LE(at + 16),
        compressedSize: bytes.readUInt32LE(at + 20),
        size: bytes.readUInt32LE(at + 24),
        headerOffset: bytes.readUInt32LE(at + 42),
      };
      this.applyZip64(entry, at + 46 + nameLength, extraLength);
      if (this.entries.has(name)) throw this.broken(`it holds ${name} twice`);
      this.entries.set(name, entry);
      at += 46 + nameLength + extraLength + commentLength;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry's bytes (a view into the archive when stored), CRC-checked. */
  read(name: string): Buffer {
    const entry = this.entries.get(name);
    if (!entry) throw this.broken(`it has no ${name}`);
    const at = entry.headerOffset;
    this.need(at, 30, `the header of ${name}`);
    if (this.bytes.readUInt32LE(at) !== LOCAL) throw this.broken(`the header of ${name} has a bad signature`);
    const start = at + 30 + this.bytes.readUInt16LE(at + 26) + this.bytes.readUInt16LE(at + 28);
    this.need(start, entry.compressedSize, `the data of ${name}`);
    const raw = this.bytes.subarray(start, start + entry.compressedSize);
    let data: Buffer;
    if (entry.method === 0) {
      data = raw;
    } else if (entry.method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
      } catch (error) {
        throw this.broken(`${name} does not inflate (${(error as Error).message})`);
      }
    } else {
      throw this.broken(`${name} uses compression method ${entry.method} (only stored and deflate are read)`);
    }
    if (data.length !== entry.size) throw this.broken(`${name} has ${data.length} bytes, not ${entry.size}`);
    if (crc32(data) !== entry.crc) throw this.broken(`${name} fails its CRC-32 check (the file is damaged)`);
    return data;
  }

  private directory(): { count: number; offset: number } {
    const bytes = this.bytes;
    // The end record is the last thing in the file, followed by a comment of at most 65535 bytes.
    let end = -1;
    for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
      if (bytes.readUInt32LE(at) === EOCD) {
        end = at;
        break;
      }
    }
    if (end < 0) throw this.broken('it is not a zip archive (no end of central directory)');
    let count = bytes.readUInt16LE(end + 10);
    let offset = bytes.readUInt32LE(end + 16);
    if (count === 0xffff || offset === U32_MAX) {
      const locator = end - 20;
      if (locator < 0 || bytes.readUInt32LE(locator) !== ZIP64_LOCATOR)
        throw this.broken('its zip64 locator is missing');
      const record = this.u64(bytes, locator + 8);
      this.need(record, 56, 'the zip64 end record');
      if (bytes.readUInt32LE(record) !== ZIP64_EOCD) throw this.broken('its zip64 end record has a bad signature');
      count = this.u64(bytes, record + 32);
      offset = this.u64(bytes, record + 48);
    }
    this.need(offset, 0, 'the central directory');
    return { count, offset };
  }

  /** Zip64 extended information (header 0x0001) holds, in order, each field whose 32-bit slot is full. */
  private applyZip64(entry: Entry, at: number, length: number): void {
    const end = at + length;
    while (at + 4 <= end) {
      const id = this.bytes.readUInt16LE(at);
      const size = this.bytes.readUInt16LE(at + 2);
      if (at + 4 + size > end) throw this.broken('an extra field overruns its entry');
      if (id === 1) {
        let field = at + 4;
        for (const key of ['size', 'compressedSize', 'headerOffset'] as const) {
          if (entry[key] !== U32_MAX) continue;
          if (field + 8 > at + 4 + size) throw this.broken('a zip64 field is short');
          entry[key] = this.u64(this.bytes, field);
          field += 8;
        }
      }
      at += 4 + size;
    }
  }

  private u64(bytes: Buffer, at: number): number {
    this.need(at, 8, 'a 64-bit field');
    const value = bytes.readBigUInt64LE(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.broken('a 64-bit size is out of range');
    return Number(value);
  }

  private need(at: number, length: number, what: string): void {
    if (at < 0 || length < 0 || at + length > this.bytes.length) throw this.broken(`${what} lies past the end`);
  }

  private broken(reason: string): CheckpointError {
    return new CheckpointError(`${this.what} is not a readable torch.save archive: ${reason}.`);
  }
}
