// Photos are made smaller in the browser before they travel: a 12-megapixel phone photo (4 MB) becomes a
// JPEG of at most MAX_SIDE pixels on its long side (a few hundred KB), which is still far more than the
// model looks at (224 px) and keeps the long side above the 1024 px the catalog wants for people to see.
// EXIF orientation is applied while decoding, so the smaller photo is upright without it.
export const MAX_SIDE = 1600;
/** Smaller files are sent as they are when they also fit MAX_SIDE (re-encoding would only cost quality). */
const SMALL_BYTES = 1.5 * 1024 * 1024;

export interface Photo {
  blob: Blob;
  width?: number;
  height?: number;
  /** Bytes of the file as chosen, before shrinking. */
  originalBytes: number;
}

export async function preparePhoto(file: Blob): Promise<Photo> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    // This browser cannot decode it (HEIC in Chrome, say): the server may; it answers clearly if not.
    return { blob: file, originalBytes: file.size };
  }
  const { width, height } = bitmap;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  if (scale === 1 && file.size <= SMALL_BYTES) {
    bitmap.close();
    return { blob: file, width, height, originalBytes: file.size };
  }
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const context = canvas.getContext('2d');
  if (!context) {
    bitmap.close();
    return { blob: file, width, height, originalBytes: file.size };
  }
  context.fillStyle = '#ffffff'; // transparent pixels would turn black in a JPEG
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.imageSmoothingQuality = 'high';
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.88));
  return blob
    ? { blob, width: canvas.width, height: canvas.height, originalBytes: file.size }
    : { blob: file, width, height, originalBytes: file.size };
}
