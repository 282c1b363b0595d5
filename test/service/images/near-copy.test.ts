// The near-copy rule on synthetic pictures: edited copies (resize, crop, re-encode, EXIF rotation) must be flagged
// in both argument orders, while different pictures, a recoloured one and one with a different label must not.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { compareSignatures, imageSignature, isNearCopy } from '../../../service/src/images/near-copy.js';
import * as images from '../../support/images.js';

const W = 320;
const H = 240;

/** Cuts the given fractions off the left, right, top and bottom, saved as JPEG q90. */
const cropped = (bytes: Buffer, l: number, r: number, t: number, b: number) =>
  sharp(bytes)
    .extract({
      left: Math.round(W * l),
      top: Math.round(H * t),
      width: Math.round(W * (1 - l - r)),
      height: Math.round(H * (1 - t - b)),
    })
    .jpeg({ quality: 90 })
    .toBuffer();

/** Both argument orders, so the caller may pass either image first. */
async function bothWays(a: Buffer, b: Buffer) {
  const [sa, sb] = [await imageSignature(a), await imageSignature(b)];
  return [compareSignatures(sa, sb), compareSignatures(sb, sa)];
}

describe('near copies are flagged', () => {
  const copies: Record<string, (original: Buffer) => Promise<Buffer>> = {
    'resize 90 % at JPEG q80': (o) =>
      sharp(o)
        .resize(Math.round(W * 0.9))
        .jpeg({ quality: 80 })
        .toBuffer(),
    'resize 25 % as WebP': (o) =>
      sharp(o)
        .resize(Math.round(W * 0.25))
        .webp()
        .toBuffer(),
    'JPEG q40': (o) => sharp(o).jpeg({ quality: 40 }).toBuffer(),
    PNG: (o) => sharp(o).png().toBuffer(),
    'crop 8 % each side': (o) => cropped(o, 0.08, 0.08, 0.08, 0.08),
    'crop 8 % off the left and the top': (o) => cropped(o, 0.08, 0, 0.08, 0),
    'crop 10 % off the bottom, resize 50 % q70': async (o) =>
      sharp(await cropped(o, 0, 0, 0, 0.1))
        .resize(W / 2)
        .jpeg({ quality: 70 })
        .toBuffer(),
    'brightness +10 %': (o) => sharp(o).modulate({ brightness: 1.1 }).jpeg({ quality: 90 }).toBuffer(),
  };
  for (const [name, edit] of Object.entries(copies)) {
    it(name, async () => {
      for (const seed of [1, 2, 3]) {
        const original = await images.jpeg(W, H, seed);
        for (const result of await bothWays(original, await edit(original))) {
          expect(result, `seed ${seed}`).toMatchObject({ nearCopy: true });
          expect(result.distance).toBeGreaterThanOrEqual(0);
        }
      }
    });
  }

  it('an EXIF-rotated copy (stored turned by 90°)', async () => {
    for (const result of await bothWays(await images.jpeg(W, H, 4), await images.exifRotatedJpeg(W, H, 4))) {
      expect(result.nearCopy).toBe(true);
    }
  });

  it('isNearCopy decodes both files and decides the same way', async () => {
    const original = await images.jpeg(W, H, 5);
    const copy = await sharp(original).resize(200).jpeg({ quality: 80 }).toBuffer();
    const [expected] = await bothWays(original, copy);
    expect(await isNearCopy(original, copy)).toEqual(expected);
  });
});

describe('different pictures are not flagged', () => {
  it('pictures made from other seeds', async () => {
    for (const [x, y] of [
      [1, 2],
      [1, 3],
      [2, 3],
      [4, 5],
    ]) {
      for (const result of await bothWays(await images.jpeg(W, H, x), await images.jpeg(W, H, y))) {
        expect(result, `seeds ${x} and ${y}`).toMatchObject({ nearCopy: false });
      }
    }
  });

  it('the same layout in another colour (hue turned 60°)', async () => {
    const original = await images.jpeg(W, H, 1);
    const recoloured = await sharp(original).modulate({ hue: 60 }).jpeg({ quality: 90 }).toBuffer();
    for (const result of await bothWays(original, recoloured)) expect(result.nearCopy).toBe(false);
  });

  it('the same picture with a different label: one region (15 % of the area) in another colour', async () => {
    const original = await images.jpeg(W, H, 1);
    // 128 × 90 px = 15 % of 320 × 240, like a flavour label on an otherwise identical pack.
    const label = await sharp({ create: { width: 128, height: 90, channels: 3, background: '#c8202a' } })
      .png()
      .toBuffer();
    const flavour = await sharp(original)
      .composite([{ input: label, left: 96, top: 75 }])
      .jpeg({ quality: 90 })
      .toBuffer();
    // Resized too, so the label alone has to make the difference, not the encoding.
    const resized = await sharp(flavour).resize(288).jpeg({ quality: 80 }).toBuffer();
    for (const result of [...(await bothWays(original, flavour)), ...(await bothWays(original, resized))]) {
      expect(result.nearCopy).toBe(false);
    }
  });
});

describe('odd sizes and bad input', () => {
  it('tiny and extreme-aspect images give a signature and match themselves', async () => {
    const odd = [
      await images.jpeg(20, 20, 6),
      await images.tinyPng(),
      await images.wideJpeg(),
      await images.tallPng(),
      await images.alphaPng(),
    ];
    for (const bytes of odd) {
      const signature = await imageSignature(bytes);
      expect(compareSignatures(signature, signature)).toEqual({ nearCopy: true, distance: 0 });
    }
  });

  it('shapes that cannot be aligned are not near copies, with an infinite distance', async () => {
    const wide = await imageSignature(await images.wideJpeg());
    const tall = await imageSignature(await images.tallPng());
    const photo = await imageSignature(await images.jpeg(W, H, 1));
    for (const [a, b] of [
      [wide, tall],
      [wide, photo],
      [photo, tall],
    ] as const) {
      expect(compareSignatures(a, b)).toEqual({ nearCopy: false, distance: Infinity });
    }
  });

  it('a tiny copy of a tiny image is flagged', async () => {
    const small = await images.jpeg(20, 20, 6);
    const smaller = await sharp(small).resize(16).png().toBuffer();
    for (const result of await bothWays(small, smaller)) expect(result.nearCopy).toBe(true);
  });

  it('bytes that are not an image get an error that says what to pass', async () => {
    for (const bytes of [Buffer.from('not an image'), Buffer.alloc(0), await images.truncatedJpeg()]) {
      await expect(imageSignature(bytes)).rejects.toThrow(/cannot be decoded.*pass the stored image file's bytes/);
    }
  });
});
