// Writes a minimal zip archive (stored entries, as torch.save writes them) so tests can build checkpoints
// byte by byte, including broken and hostile ones that no torch would write.
import { crc32 } from '../../service/src/embedding/checkpoint/zip.js';

/** A local (30 bytes) or central (46 bytes) header: both hold CRC, sizes and name length in one run. */
function header(signature: number, length: number, run: number, data: Buffer, nameLength: number): Buffer {
  const bytes = Buffer.alloc(length);
  bytes.writeUInt32LE(signature, 0);
  bytes.writeUInt32LE(crc32(data), run);
  bytes.writeUInt32LE(data.length, run + 4); // compressed = uncompressed: stored
  bytes.writeUInt32LE(data.length, run + 8);
  bytes.writeUInt16LE(nameLength, run + 12);
  return bytes;
}

/** With `zip64`, the central directory puts sizes and offsets in a zip64 extra field, as large archives do. */
export function zipStored(entries: Record<string, Uint8Array | string>, options: { zip64?: boolean } = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(entries)) {
    const data = Buffer.from(content);
    const nameBytes = Buffer.from(name, 'utf8');
    const local = header(0x04034b50, 30, 14, data, nameBytes.length);
    const central = header(0x02014b50, 46, 16, data, nameBytes.length);
    central.writeUInt32LE(offset, 42);
    let extra = Buffer.alloc(0);
    if (options.zip64) {
      extra = Buffer.alloc(28);
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      for (const [i, value] of [data.length, data.length, offset].entries())
        extra.writeBigUInt64LE(BigInt(value), 4 + 8 * i);
      for (const at of [20, 24, 42]) central.writeUInt32LE(0xffffffff, at);
      central.writeUInt16LE(extra.length, 30);
    }
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes, extra);
    offset += local.length + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(centrals.length / 3, 8);
  end.writeUInt16LE(centrals.length / 3, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}
