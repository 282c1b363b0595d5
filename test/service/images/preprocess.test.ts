import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ServiceError } from '../../../service/src/errors.js';
import { planGeometry, preprocess, roundHalfToEven } from '../../../service/src/images/preprocess.js';
import * as images from '../../support/images.js';

const spec = { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
const limits = { maxPixels: 100_000_000 };
const AREA = 224 * 224;
const FIXTURES = path.join(import.meta.dirname, '../../fixtures/parity');

/** Undo Normalize + ToTensor: the 0-255 pixel value of channel c at index i. */
const pixel = (tensor: Float32Array, c: number, i: number) => (tensor[c * AREA + i] * spec.std[c] + spec.mean[c]) * 255;

describe('torchvision geometry', () => {
  it('rounds half to even like Python', () => {
    expect([0.5, 1.5, 2.5, 3.5, 58.5, 59.5, 2.4, 2.6].map(roundHalfToEven)).toEqual([0, 2, 2, 4, 58, 60, 2, 3]);
  });

  it('truncates the long side and crops at banker-rounded offsets', () => {
    // 1024×768 → 341×256 (int(256·1024/768) = 341), crop left = round(58.5) = 58
    expect(planGeometry(1024, 768, spec)).toEqual({
      trim: { left: 0, top: 0, width: 1024, height: 768 },
      resized: { width: 341, height: 256 },
      crop: { left: 58, top: 16, width: 224, height: 224 },
    });
    expect(planGeometry(683, 1024, spec).resized).toEqual({ width: 256, height: 383 });
  });

  it('trims extreme aspect ratios around the centre before resizing', () => {
    const plan = planGeometry(1, 20000, spec);
    expect(plan.trim).toEqual({ left: 0, top: 9996, width: 1, height: 8 });
    expect(plan.resized).toEqual({ width: 256, height: 2048 });
  });
});

describe('parity with torchvision Resize(256) + CenterCrop(224)', () => {
  const sources = readdirSync(FIXTURES).filter((file) => !file.includes('.ref.'));

  it('has fixtures (written by models/parity_reference.py)', () => {
    expect(sources.length).toBeGreaterThanOrEqual(6);
  });

  for (const source of sources) {
    it(`matches the committed torchvision tensor for ${source}`, async () => {
      const tensor = await preprocess(readFileSync(path.join(FIXTURES, source)), spec, limits);
      const reference = await sharp(path.join(FIXTURES, source.replace(/\.(jpg|png)$/, '.ref.png')))
        .raw()
        .toBuffer();
      let sum = 0;
      let max = 0;
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < AREA; i++) {
          const diff = Math.abs(pixel(tensor, c, i) - reference[i * 3 + c]);
          sum += diff;
          max = Math.max(max, diff);
        }
      }
      const mean = sum / (3 * AREA);
      // Limits measured for libvips' linear kernel against Pillow's bilinear (mean 0.22, max 6 levels);
      // enlargements use a port of Pillow's own resampler and must match exactly.
      if (source.startsWith('small-')) {
        expect(max).toBeLessThan(0.01);
      } else {
        expect(mean).toBeLessThan(0.3);
        expect(max).toBeLessThanOrEqual(6);
      }
    });
  }
});

describe('real-world inputs that must embed', () => {
  const cases: Record<string, () => Promise<Buffer>> = {
    'EXIF-rotated JPEG': () => images.exifRotatedJpeg(400, 300),
    'CMYK JPEG': () => images.cmykJpeg(),
    'greyscale PNG': () => images.greyPng(),
    'PNG with alpha': () => images.alphaPng(),
    '16-bit PNG': () => images.png16(),
    'animated GIF': () => images.animatedGif(),
    WebP: () => images.webp(),
    AVIF: () => images.avif(),
    TIFF: () => images.tiff(),
    '1×1 PNG': () => images.tinyPng(),
    '12000×4 JPEG': () => images.wideJpeg(),
    '2×5000 PNG': () => images.tallPng(),
  };
  for (const [name, make] of Object.entries(cases)) {
    it(name, async () => {
      const tensor = await preprocess(await make(), spec, limits);
      expect(tensor).toHaveLength(3 * AREA);
      expect(tensor.every(Number.isFinite)).toBe(true);
    });
  }

  it('applies EXIF orientation: a rotated-with-EXIF photo equals the upright one', async () => {
    const upright = await preprocess(await images.jpeg(400, 300, 3), spec, limits);
    const rotated = await preprocess(await images.exifRotatedJpeg(400, 300, 3), spec, limits);
    let diff = 0;
    for (let i = 0; i < upright.length; i++) diff += Math.abs(upright[i] - rotated[i]);
    expect(diff / upright.length).toBeLessThan(0.05);
    // ...and ignoring the tag would have produced a very different tensor.
    const ignored = await preprocess(
      await sharp(await images.exifRotatedJpeg(400, 300, 3))
        .withMetadata({ orientation: 1 })
        .toBuffer(),
      spec,
      limits,
    );
    let ignoredDiff = 0;
    for (let i = 0; i < upright.length; i++) ignoredDiff += Math.abs(upright[i] - ignored[i]);
    expect(ignoredDiff / upright.length).toBeGreaterThan(0.2);
  });

  it('flattens transparency onto white', async () => {
    const tensor = await preprocess(await images.alphaPng(), spec, limits);
    // Left half of the source is transparent: white. Right half is opaque red (200, 0, 0).
    expect([0, 1, 2].map((c) => Math.round(pixel(tensor, c, 0)) + 0)).toEqual([255, 255, 255]);
    expect([0, 1, 2].map((c) => Math.round(pixel(tensor, c, 223)) + 0)).toEqual([200, 0, 0]);
  });

  it('converts CMYK to sRGB colours', async () => {
    const fromRgb = await preprocess(await images.jpeg(300, 200, 1), spec, limits);
    const fromCmyk = await preprocess(await images.cmykJpeg(1), spec, limits);
    let diff = 0;
    for (let i = 0; i < fromRgb.length; i++) diff += Math.abs(fromRgb[i] - fromCmyk[i]);
    expect(diff / fromRgb.length).toBeLessThan(0.25); // same picture, through a CMYK round trip
  });
});

describe('inputs that must be refused with a typed error', () => {
  const refused: Array<[string, () => Promise<Buffer> | Buffer, number, string]> = [
    ['zero bytes', () => Buffer.alloc(0), 400, 'empty_image'],
    ['plain text', () => Buffer.from('this is not an image at all'), 415, 'unsupported_image'],
    ['SVG', images.svg, 415, 'unsupported_image'],
    ['PDF', () => Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF'), 415, 'unsupported_image'],
    ['truncated JPEG', images.truncatedJpeg, 422, 'image_unreadable'],
    ['decompression bomb (60000×60000 PNG)', () => images.bombPng(), 413, 'image_too_large'],
  ];
  for (const [name, make, status, code] of refused) {
    it(name, async () => {
      const error = await preprocess(await make(), spec, limits).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServiceError);
      expect(error).toMatchObject({ status, code });
      expect((error as ServiceError).message.length).toBeGreaterThan(20);
    });
  }

  it('applies the pixel limit from the configuration', async () => {
    const error = await preprocess(await images.jpeg(400, 300), spec, { maxPixels: 400 * 300 - 1 }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ status: 413, code: 'image_too_large' });
  });
});
