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

export function zipStored(entries: Record<string, Uint8Array | string>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(entries)) {
    const data = Buffer.from(content);
    const nameBytes = Buffer.from(name, 'utf8');
    const local = header(0x04034b50, 30, 14, data, nameBytes.length);
    const central = header(0x02014b50, 46, 16, data, nameBytes.length);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(centrals.length / 2, 8);
  end.writeUInt16LE(centrals.length / 2, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}
