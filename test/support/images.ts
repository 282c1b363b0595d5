// Test images made on the fly with sharp, so tests need no files from outside the repository.
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

/** A smooth, photo-like RGB picture: gradients plus a few blobs whose placement depends on `seed`. */
export function photoPixels(width: number, height: number, seed = 1): Buffer {
  const data = Buffer.alloc(width * height * 3);
  const cx = ((seed * 37) % 100) / 100;
  const cy = ((seed * 61) % 100) / 100;
  const hue = (seed * 47) % 255;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / Math.max(1, width - 1);
      const v = y / Math.max(1, height - 1);
      const d = Math.hypot(u - cx, v - cy);
      const i = (y * width + x) * 3;
      data[i] = (u * 200 + hue + (d < 0.25 ? 80 : 0)) % 256;
      data[i + 1] = (v * 180 + 40 * Math.sin(u * 12 + seed)) % 256;
      data[i + 2] = ((1 - d) * 220 + (((x >> 4) ^ (y >> 4)) % 3)) % 256;
    }
  }
  return data;
}

export function photo(width: number, height: number, seed = 1) {
  return sharp(photoPixels(width, height, seed), { raw: { width, height, channels: 3 } });
}

export const jpeg = (width = 320, height = 240, seed = 1) =>
  photo(width, height, seed).jpeg({ quality: 90 }).toBuffer();
export const png = (width = 320, height = 240, seed = 1) => photo(width, height, seed).png().toBuffer();

/** The same picture as `jpeg(width, height, seed)` stored rotated, with EXIF saying how to turn it back. */
export async function exifRotatedJpeg(width: number, height: number, seed = 1): Promise<Buffer> {
  // Orientation 6 = the stored pixels must be turned 90° clockwise for display.
  const stored = await photo(width, height, seed).rotate(-90).png().toBuffer();
  return sharp(stored).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer();
}

export const cmykJpeg = (seed = 1) => photo(300, 200, seed).toColourspace('cmyk').jpeg().toBuffer();
export const greyPng = (seed = 1) => photo(300, 200, seed).greyscale().png().toBuffer();
export const png16 = (seed = 1) => photo(300, 200, seed).toColourspace('rgb16').png().toBuffer();
export const webp = (seed = 1) => photo(300, 200, seed).webp().toBuffer();
export const avif = (seed = 1) => photo(300, 200, seed).avif().toBuffer();
export const tiff = (seed = 1) => photo(300, 200, seed).tiff().toBuffer();

export function alphaPng(width = 200, height = 200): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data[i * 4] = 200;
    data[i * 4 + 3] = i % width < width / 2 ? 0 : 255; // left half transparent
  }
  return sharp(data, { raw: { width, height, channels: 4 } })
    .png()
    .toBuffer();
}

export async function animatedGif(width = 120, height = 90, frames = 3): Promise<Buffer> {
  const frame = photoPixels(width, height, 5);
  const all = Buffer.concat(Array.from({ length: frames }, (_, f) => frame.map((value) => (value + f * 60) % 256)));
  return sharp(all, { raw: { width, height: height * frames, channels: 3, pageHeight: height } })
    .gif()
    .toBuffer();
}

export const tinyPng = () =>
  sharp({ create: { width: 1, height: 1, channels: 3, background: '#3366cc' } })
    .png()
    .toBuffer();
export const wideJpeg = () => photo(12000, 4, 3).jpeg().toBuffer();
export const tallPng = () => photo(2, 5000, 4).png().toBuffer();

export const svg = () =>
  Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>',
  );

export async function truncatedJpeg(): Promise<Buffer> {
  const full = await jpeg(640, 480, 9);
  return full.subarray(0, Math.floor(full.length / 3));
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A decompression bomb: a valid PNG header announcing width × height pixels, with only a sliver of data. */
export function bombPng(width = 60000, height = 60000): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = deflateSync(Buffer.alloc((width * 3 + 1) * 4));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
