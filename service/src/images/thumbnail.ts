// Thumbnails for the staff page: a stored original shrunk to a few fixed sizes, upright (EXIF orientation
// applied) and as WebP. The sizes are a small fixed set so the cache stays bounded and every browser asks
// for the same few files; the ETag derives from the original's hash, so it is known before any decoding.
import sharp from 'sharp';
import { ServiceError } from '../errors.js';

export const THUMBNAIL_SIZES = [128, 256, 512] as const;
export type ThumbnailSize = (typeof THUMBNAIL_SIZES)[number];

/** Bump when the recipe below changes, so browsers and the disk cache stop trusting older thumbnails. */
const RECIPE = 1;

/** The name of a thumbnail in the disk cache: its size and recipe. */
export const thumbnailVariant = (size: ThumbnailSize) => `${size}-t${RECIPE}`;

/** The ETag of a thumbnail of an original with this SHA-256 (a quoted, strong validator). */
export const thumbnailEtag = (sha256: string, size: ThumbnailSize) =>
  `"${sha256.slice(0, 32)}-${thumbnailVariant(size)}"`;

/** A WebP whose long side is at most `size` (smaller originals are not enlarged). */
export async function makeThumbnail(original: Buffer, size: ThumbnailSize): Promise<Buffer> {
  try {
    // Originals passed the decoder's checks when they were stored; a lenient decode still shows a picture
    // whose last rows were damaged on disk since.
    return await sharp(original, { autoOrient: true, failOn: 'none', limitInputPixels: false })
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 80 })
      .toBuffer();
  } catch (error) {
    throw new ServiceError(
      'image_unreadable',
      `The stored original cannot be decoded (${(error as Error).message.split('\n')[0]}); delete the image and ` +
        'add it again.',
    );
  }
}
