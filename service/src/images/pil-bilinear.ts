// Pillow's antialiased BILINEAR resampling (what torchvision's Resize does to PIL images), in fixed
// point exactly as Pillow computes it. Only used to enlarge small images: libvips enlarges with another
// pixel-centre convention (up to ~100 levels off at edges), while for reductions its linear kernel
// already matches Pillow within a few levels and is far faster on large photos.

const PRECISION_BITS = 32 - 8 - 2;

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  stride: number;
}

/** Fixed-point taps for the output indices [first, first + length) of an inSize → outSize resize. */
function taps(inSize: number, outSize: number, first: number, length: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // bilinear support 1.0 × filter scale
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(length);
  const count = new Int32Array(length);
  const weights = new Int32Array(length * stride);
  const raw = new Float64Array(stride);
  for (let o = 0; o < length; o++) {
    const center = (first + o + 0.5) * scale;
    const min = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - min;
    let total = 0;
    for (let x = 0; x < n; x++) {
      const distance = Math.abs((x + min - center + 0.5) / filterScale);
      raw[x] = distance < 1 ? 1 - distance : 0;
      total += raw[x];
    }
    for (let x = 0; x < n; x++) {
      const k = total === 0 ? 0 : (raw[x] / total) * (1 << PRECISION_BITS);
      weights[o * stride + x] = k < 0 ? Math.trunc(k - 0.5) : Math.trunc(k + 0.5);
    }
    start[o] = min;
    count[o] = n;
  }
  return { start, count, weights, stride };
}

const clip8 = (value: number) => (value <= 0 ? 0 : value >= 255 << PRECISION_BITS ? 255 : value >> PRECISION_BITS);

/**
 * Resizes an interleaved uint8 image to outWidth × outHeight and returns only the window
 * [left, left + width) × [top, top + height) of the result, as interleaved uint8.
 */
export function pilBilinearWindow(
  pixels: Uint8Array,
  size: { width: number; height: number; channels: number },
  out: { width: number; height: number },
  window: { left: number; top: number; width: number; height: number },
): Uint8Array {
  const { width, height, channels } = size;
  const horizontal = taps(width, out.width, window.left, window.width);
  const vertical = taps(height, out.height, window.top, window.height);
  // Pillow resizes horizontally first (keeping only the rows the vertical pass reads), then vertically.
  const rowFirst = vertical.start[0];
  const rowLast = vertical.start[window.height - 1] + vertical.count[window.height - 1];
  const rows = rowLast - rowFirst;
  const middle = new Uint8Array(rows * window.width * channels);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < rows; y++) {
    const source = (rowFirst + y) * width * channels;
    for (let x = 0; x < window.width; x++) {
      for (let c = 0; c < channels; c++) {
        let sum = half;
        for (let t = 0; t < horizontal.count[x]; t++) {
          sum +=
            pixels[source + (horizontal.start[x] + t) * channels + c] * horizontal.weights[x * horizontal.stride + t];
        }
        middle[(y * window.width + x) * channels + c] = clip8(sum);
      }
    }
  }
  const result = new Uint8Array(window.width * window.height * channels);
  const rowLength = window.width * channels;
  for (let y = 0; y < window.height; y++) {
    for (let i = 0; i < rowLength; i++) {
      let sum = half;
      for (let t = 0; t < vertical.count[y]; t++) {
        sum += middle[(vertical.start[y] - rowFirst + t) * rowLength + i] * vertical.weights[y * vertical.stride + t];
      }
      result[y * rowLength + i] = clip8(sum);
    }
  }
  return result;
}
