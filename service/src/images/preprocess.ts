// Bytes → the model's input tensor. Matches torchvision's Resize(resize) + CenterCrop(crop) + ToTensor +
// Normalize(mean, std) to within a few pixel levels (one fused libvips pipeline with a linear kernel and
// no shrink-on-load; sizes truncated and crop offsets rounded half-to-even as Python does), and then
// fixes what the reference gets wrong for real uploads: EXIF orientation, transparency, CMYK/grey/ICC.
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { ServiceError } from '../errors.js';
import { pilBilinearWindow } from './pil-bilinear.js';
import { toTensor } from './tensor.js';

export interface PreprocessSpec {
  resize: number;
  crop: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

export interface PreprocessLimits {
  maxPixels: number;
  /** Keep only this central fraction of each side before resizing (a second view of a search photo). */
  zoom?: number;
}

/** Formats we decode; anything else (SVG, PDF, PPM, RAW, JPEG 2000, ...) is refused. */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);
const ACCEPTED_LIST = 'JPEG, PNG, WebP, GIF, AVIF, TIFF or HEIC';

/** Beyond this aspect ratio the long side is trimmed around the centre before resizing: the crop only
 * ever sees the centre, and resizing a 1×20000 strip to 256 rows would allocate gigabytes. */
const MAX_ASPECT = 8;

const unsupported = (detail: string) =>
  new ServiceError('unsupported_image', `${detail} Send a ${ACCEPTED_LIST} image.`);

/** Python's round(): halves go to the even neighbour. torchvision's CenterCrop uses it. */
export function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

interface Geometry {
  /** Region of the oriented source kept before resizing (only differs from the whole for extreme aspect ratios). */
  trim: { left: number; top: number; width: number; height: number };
  resized: { width: number; height: number };
  crop: { left: number; top: number; width: number; height: number };
}

/** torchvision Resize(int): the shorter side becomes `resize`, the longer is int(resize * long / short). */
export function planGeometry(
  width: number,
  height: number,
  spec: Pick<PreprocessSpec, 'resize' | 'crop'>,
  zoom = 1,
): Geometry {
  const zoomed = { width: Math.max(1, Math.round(width * zoom)), height: Math.max(1, Math.round(height * zoom)) };
  const trim = {
    left: Math.floor((width - zoomed.width) / 2),
    top: Math.floor((height - zoomed.height) / 2),
    ...zoomed,
  };
  width = zoomed.width;
  height = zoomed.height;
  const short = Math.min(width, height);
  const longLimit = short * MAX_ASPECT;
  if (width > longLimit) {
    trim.width = longLimit;
    trim.left += Math.floor((width - longLimit) / 2);
  } else if (height > longLimit) {
    trim.height = longLimit;
    trim.top += Math.floor((height - longLimit) / 2);
  }
  const scaleLong = (long: number) => Math.floor((spec.resize * long) / short);
  const resized =
    trim.width <= trim.height
      ? { width: spec.resize, height: scaleLong(trim.height) }
      : { width: scaleLong(trim.width), height: spec.resize };
  const crop = {
    left: roundHalfToEven((resized.width - spec.crop) / 2),
    top: roundHalfToEven((resized.height - spec.crop) / 2),
    width: spec.crop,
    height: spec.crop,
  };
  return { trim, resized, crop };
}

function classifyDecodeError(error: unknown): ServiceError {
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) {
    return new ServiceError(
      'image_too_large',
      'The image has more pixels than this service decodes. Send a smaller image.',
    );
  }
  if (/unsupported image format|bad seek|not a known file format/i.test(message)) {
    return unsupported('The file is not a supported image.');
  }
  return new ServiceError(
    'image_unreadable',
    `The image header was read but its pixels could not be decoded (${message.split('\n')[0]}). The file is ` +
      `probably truncated or corrupt; send the original file again.`,
  );
}

/** An image decoded to the model's crop: crop × crop pixels, `channels` interleaved (RGB first). */
export interface DecodedImage {
  pixels: Uint8Array;
  channels: number;
}

/**
 * Decodes and checks the image, then returns the CHW float32 tensor (3 × crop × crop).
 * Every failure is a ServiceError with a 4xx status.
 */
export async function preprocess(bytes: Buffer, spec: PreprocessSpec, limits: PreprocessLimits): Promise<Float32Array> {
  const { pixels, channels } = await decodeForModel(bytes, spec, limits);
  return toTensor(pixels, channels, spec);
}

/**
 * Decodes and checks the image, resized and cropped as the model needs it (normalising is left to
 * toTensor, in whichever thread runs the model). Every failure is a ServiceError with a 4xx status.
 */
export async function decodeForModel(
  bytes: Buffer,
  spec: PreprocessSpec,
  limits: PreprocessLimits,
): Promise<DecodedImage> {
  if (bytes.length === 0) {
    throw new ServiceError('empty_image', 'The image is empty (0 bytes). Send the image file itself.');
  }
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw unsupported('The file is not an image this service can read.');
  }
  if (!metadata.format || !ACCEPTED_FORMATS.has(metadata.format)) {
    throw unsupported(`${(metadata.format ?? 'This').toUpperCase()} images are not accepted.`);
  }
  const { width, height } = metadata.autoOrient ?? metadata;
  if (!width || !height) throw classifyDecodeError(new Error('the image has no dimensions'));
  if (width * height > limits.maxPixels) {
    throw new ServiceError(
      'image_too_large',
      `The image is ${width}×${height} pixels; the limit is ${limits.maxPixels} pixels. Send a smaller image.`,
    );
  }

  const geometry = planGeometry(width, height, spec, limits.zoom);
  const pipeline = sharp(bytes, {
    limitInputPixels: limits.maxPixels,
    failOn: 'error',
    sequentialRead: true,
    autoOrient: true,
  });
  if (geometry.trim.width !== width || geometry.trim.height !== height) pipeline.extract(geometry.trim);
  pipeline.flatten({ background: '#ffffff' }).toColourspace('srgb');
  const enlarging = geometry.resized.width > geometry.trim.width;
  if (!enlarging) {
    pipeline
      .resize(geometry.resized.width, geometry.resized.height, {
        kernel: 'linear',
        fit: 'fill',
        fastShrinkOnLoad: false,
      })
      .extract(geometry.crop);
  }
  pipeline.removeAlpha().raw({ depth: 'uchar' });

  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await pipeline.toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw metadata.compression === 'hevc'
      ? unsupported(
          'HEIC photos compressed with HEVC cannot be decoded here (set the camera to "Most Compatible" or ' +
            'convert to JPEG).',
        )
      : classifyDecodeError(error);
  }
  const { data, info } = decoded;
  const pixels = enlarging ? pilBilinearWindow(data, info, geometry.resized, geometry.crop) : data;
  if (pixels.length !== spec.crop * spec.crop * info.channels || info.channels < 3) {
    throw new ServiceError(
      'image_unreadable',
      'The image decoded to an unexpected pixel layout. Re-save it as JPEG or PNG and retry.',
    );
  }
  return { pixels, channels: info.channels };
}

/** The container format of an image that already passed `preprocess` (for the stored file's extension). */
export async function imageFormat(bytes: Buffer): Promise<string> {
  return (await sharp(bytes, { limitInputPixels: false }).metadata()).format ?? 'bin';
}
