// Near-copy verification for duplicate warnings: is image b the same picture as image a, resized, re-encoded,
// lightly cropped or brightened? The embedding finds the candidates but cannot decide (a resized copy scores
// 0.93-0.96 cosine, two milk cartons of one brand 0.962) and the 64-bit pHash breaks on crops, so this compares
// the pictures themselves, after aligning them.
//
// Signature: the EXIF-oriented image on white, shrunk to fit 48×48 px, in CIELAB, kept as a summed-area table so
// the mean colour of any box costs four look-ups. Comparison: an alignment cuts up to 14 % off each side of either
// image (the matched parts keep their shape: aspect ratios within 4 %, one coarse step more on the grid). It is
// found by three alternating one-axis searches (x, y, x; 9×9 cuts in 3.5 % steps each) minimising the squared
// Lab differences of an 8×8 grid of cell means, after fitting b's lightness to a's (gain 0.8-1.25 plus offset, for
// brightness and contrast edits), then refined down to 0.4 % steps. Rule: near copy when EVERY cell of a 12×12 grid
// agrees within ΔE 16 (CIE76 after the lightness fit), not the mean: a different flavour label or colour in one
// region of an otherwise identical pack fails; shapes that cannot be matched give distance Infinity.
//
// Measured (npm run eval:near-copy, grocery-dev: 279 images, 31 catalog shots + 248 store photos; the larger
// distance of both argument orders): flagged 100 % of resize 90 % q80 (max 5.6), resize 50 % q70, crops of 5 % each
// side and of 10 % off any one side, JPEG q40, PNG, contrast +15 % and crop 5 % + resize 50 % q70 (max 12.9);
// 99.3 % of resize 25 % WebP (max 17.5) and of brightness +15 % (max 21.3: clipped whites). All 37,665 pairs of
// different items: none flagged, smallest distance 31.7 (milk packs of one brand), 1 % below 43.2: a 2× margin.
// Pairs of different photos of one item (1,116): none flagged (smallest 19.9). Speed: compareSignatures median
// 0.60 ms per pair (p95 0.72 ms; fastest of 5 runs over 500 pairs), imageSignature median 2.5 ms (2 shared
// cores, Node 20).
import sharp, { type OutputInfo } from 'sharp';

export interface Signature {
  /** Working raster size (pixels). */
  width: number;
  height: number;
  /** Width / height of the oriented original, for the aspect check (the raster is rounded). */
  aspect: number;
  /** Summed-area table of the CIELAB raster: (width + 1) × (height + 1) × 3, row-major, zero first row/col. */
  table: Float64Array;
}

/** The search and decision constants (exported so the evaluation can try changes; the service never changes them). */
export const tuning = {
  /** Longest side of the working raster, px. */
  side: 48,
  /** Most cut off any one side of either image, as a fraction. */
  margin: 0.14,
  /** Step of the coarse alignment search, as a fraction. */
  coarseStep: 0.035,
  /** Largest |log| ratio of the matched parts' aspect ratios (one coarse step more on the coarse grid). */
  aspectTolerance: 0.04,
  /** Cells per side of the grid the search minimises over, and of the grid the decision checks (at most 16). */
  searchGrid: 8,
  verifyGrid: 12,
  /** Largest ΔE (CIE76, after the lightness fit) any verify cell may show in a near copy. */
  threshold: 16,
  /** Bounds of the lightness gain fitted from b to a (and its inverse). */
  maxGain: 1.25,
};

/** The signature of an image file (meant for files the service already accepted: JPEG, PNG, WebP, ...). */
export async function imageSignature(bytes: Buffer): Promise<Signature> {
  let decoded: { data: Buffer; info: OutputInfo; oriented: { width: number; height: number } };
  try {
    const image = sharp(bytes, { failOn: 'error', animated: false, autoOrient: true });
    const oriented = (await image.metadata()).autoOrient;
    const { data, info } = await image
      .flatten({ background: '#ffffff' })
      .resize(tuning.side, tuning.side, { fit: 'inside' })
      .toColourspace('lab')
      .raw({ depth: 'float' })
      .toBuffer({ resolveWithObject: true });
    decoded = { data, info, oriented };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`near-copy check: the image cannot be decoded (${reason}); pass the stored image file's bytes`);
  }
  const { data, info, oriented } = decoded;
  // A copy: the raw buffer may start at an offset that is not a multiple of 4.
  const pixels = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
  const { width, height, channels } = info;
  const stride = (width + 1) * 3;
  const table = new Float64Array(stride * (height + 1));
  for (let y = 0; y < height; y++) {
    const row = [0, 0, 0];
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * channels;
      for (let c = 0; c < 3; c++) {
        row[c]! += pixels[p + c]!;
        const t = (y + 1) * stride + (x + 1) * 3 + c;
        table[t] = table[t - stride]! + row[c]!;
      }
    }
  }
  return { width, height, aspect: oriented.width / oriented.height, table };
}

const MAX_GRID = 16;
const scratch = {
  corners: new Float64Array((MAX_GRID + 1) * (MAX_GRID + 1) * 3),
  xi: new Int32Array(MAX_GRID + 1),
  xf: new Float64Array(MAX_GRID + 1),
  ma: new Float64Array(MAX_GRID * MAX_GRID * 3),
  mb: new Float64Array(MAX_GRID * MAX_GRID * 3),
  errors: new Float64Array(MAX_GRID * MAX_GRID),
};

/** Mean Lab colour of each cell of a gx×gy grid over [x0,x1]×[y0,y1] (normalised coordinates), into `out`. */
function gridMeans(sig: Signature, box: Box, gx: number, gy: number, out: Float64Array) {
  const { width, height, table } = sig;
  const [x0, x1, y0, y1] = box;
  const stride = (width + 1) * 3;
  const { corners, xi, xf } = scratch;
  for (let i = 0; i <= gx; i++) {
    const x = Math.min(width, Math.max(0, (x0 + ((x1 - x0) * i) / gx) * width));
    xi[i] = Math.min(width - 1, Math.floor(x));
    xf[i] = x - xi[i]!;
  }
  for (let j = 0; j <= gy; j++) {
    const y = Math.min(height, Math.max(0, (y0 + ((y1 - y0) * j) / gy) * height));
    const yi = Math.min(height - 1, Math.floor(y));
    const fy = y - yi;
    for (let i = 0; i <= gx; i++) {
      const fx = xf[i]!;
      const t = yi * stride + xi[i]! * 3;
      const o = (j * (gx + 1) + i) * 3;
      for (let c = 0; c < 3; c++) {
        const top = table[t + c]! * (1 - fx) + table[t + 3 + c]! * fx;
        const bottom = table[t + stride + c]! * (1 - fx) + table[t + stride + 3 + c]! * fx;
        corners[o + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  const area = ((x1 - x0) * width * (y1 - y0) * height) / (gx * gy);
  const row = (gx + 1) * 3;
  for (let j = 0; j < gy; j++) {
    for (let i = 0; i < gx; i++) {
      const k = (j * (gx + 1) + i) * 3;
      const o = (j * gx + i) * 3;
      for (let c = 0; c < 3; c++) {
        out[o + c] = (corners[k + row + 3 + c]! - corners[k + row + c]! - corners[k + 3 + c]! + corners[k + c]!) / area;
      }
    }
  }
}

/** Which part of each image is matched: [x0, x1, y0, y1], normalised. */
type Box = readonly [number, number, number, number];

/**
 * An alignment: how much is cut off each side (left, right, top, bottom), as a fraction of the image; a positive
 * value cuts `a`, a negative one cuts `b` (so either image may be the cropped one).
 */
type Alignment = [lx: number, rx: number, ly: number, ry: number];

function boxes(p: Alignment): { a: Box; b: Box } {
  const [lx, rx, ly, ry] = p;
  return {
    a: [Math.max(lx, 0), 1 - Math.max(rx, 0), Math.max(ly, 0), 1 - Math.max(ry, 0)],
    b: [Math.max(-lx, 0), 1 - Math.max(-rx, 0), Math.max(-ly, 0), 1 - Math.max(-ry, 0)],
  };
}

/** How far apart the shapes of the two matched parts are (|log| of the ratio of their aspect ratios). */
function aspectError(a: Signature, b: Signature, p: Alignment): number {
  const r = boxes(p);
  const aspectA = ((r.a[1] - r.a[0]) * a.aspect) / (r.a[3] - r.a[2]);
  const aspectB = ((r.b[1] - r.b[0]) * b.aspect) / (r.b[3] - r.b[2]);
  return Math.abs(Math.log(aspectA / aspectB));
}

/**
 * Per-cell colour differences of a gx×gy grid after fitting b's lightness to a's (gain + offset, bounded, for
 * brightness/contrast edits), into scratch.errors; returns their sum of squares.
 */
function cellErrors(a: Signature, b: Signature, p: Alignment, gx: number, gy: number): number {
  const { ma, mb, errors } = scratch;
  const r = boxes(p);
  gridMeans(a, r.a, gx, gy, ma);
  gridMeans(b, r.b, gx, gy, mb);
  const cells = gx * gy;
  let sa = 0;
  let sb = 0;
  let sbb = 0;
  let sab = 0;
  for (let k = 0; k < cells; k++) {
    const la = ma[k * 3]!;
    const lb = mb[k * 3]!;
    sa += la;
    sb += lb;
    sbb += lb * lb;
    sab += la * lb;
  }
  const varB = sbb / cells - (sb / cells) ** 2;
  const cov = sab / cells - (sa / cells) * (sb / cells);
  const gain = varB > 1e-6 ? Math.min(tuning.maxGain, Math.max(1 / tuning.maxGain, cov / varB)) : 1;
  const offset = sa / cells - gain * (sb / cells);
  let sum = 0;
  for (let k = 0; k < cells; k++) {
    const dl = ma[k * 3]! - (gain * mb[k * 3]! + offset);
    const da = ma[k * 3 + 1]! - mb[k * 3 + 1]!;
    const db = ma[k * 3 + 2]! - mb[k * 3 + 2]!;
    const e2 = dl * dl + da * da + db * db;
    errors[k] = Math.sqrt(e2);
    sum += e2;
  }
  return sum;
}

/** Best cut of one axis (indices 0,1 = x or 2,3 = y) over the coarse steps, the other axis held. */
function searchAxis(a: Signature, b: Signature, start: Alignment, axis: 0 | 2, steps: number[], checkAspect: boolean) {
  const g = tuning.searchGrid;
  let best: Alignment = start;
  let bestCost = Infinity;
  for (const u of steps) {
    for (const v of steps) {
      const p: Alignment = [...start];
      p[axis] = u;
      p[axis + 1] = v;
      // The coarse grid may miss the exact shape by up to one step.
      if (checkAspect && aspectError(a, b, p) > tuning.aspectTolerance + tuning.coarseStep) continue;
      const c = cellErrors(a, b, p, g, g);
      if (c < bestCost) {
        bestCost = c;
        best = p;
      }
    }
  }
  return best;
}

/**
 * Is b a near copy of a? `distance` is the worst cell's colour difference after alignment (Infinity when the two
 * shapes cannot be matched by the allowed crops); synchronous, no allocation beyond a few small arrays.
 */
export function compareSignatures(a: Signature, b: Signature): { nearCopy: boolean; distance: number } {
  const m = tuning.margin;
  const g = tuning.searchGrid;
  const steps: number[] = [];
  for (let v = -m; v <= m + 1e-9; v += tuning.coarseStep) steps.push(v);
  // Alternate x and y searches: each axis's cut barely depends on the other's, so 3 × 81 cost evaluations find
  // what the full 4-D grid (6,561, ~230 ms) finds. The first x search cannot check the shape (y is not known yet).
  let best: Alignment = [0, 0, 0, 0];
  best = searchAxis(a, b, best, 0, steps, false);
  best = searchAxis(a, b, best, 2, steps, true);
  best = searchAxis(a, b, best, 0, steps, true);
  if (aspectError(a, b, best) > tuning.aspectTolerance + tuning.coarseStep)
    return { nearCopy: false, distance: Infinity };
  let bestCost = cellErrors(a, b, best, g, g);
  // Local refinement, halving the step: a move may not make the shapes of the two matched parts differ more
  // than the tolerance or than they already do (the coarse grid allows one step more; one side at a time
  // could never walk back from there).
  for (let step = tuning.coarseStep / 2; step >= tuning.coarseStep / 8 - 1e-12; step /= 2) {
    let improved = true;
    while (improved) {
      improved = false;
      for (let key = 0; key < 4; key++) {
        for (const d of [-step, step]) {
          const p: Alignment = [...best];
          p[key] = Math.min(m, Math.max(-m, p[key]! + d));
          if (aspectError(a, b, p) > Math.max(tuning.aspectTolerance, aspectError(a, b, best))) continue;
          const c = cellErrors(a, b, p, g, g);
          if (c < bestCost) {
            bestCost = c;
            best = p;
            improved = true;
          }
        }
      }
    }
  }
  const v = tuning.verifyGrid;
  cellErrors(a, b, best, v, v);
  let distance = 0;
  for (let k = 0; k < v * v; k++) distance = Math.max(distance, scratch.errors[k]!);
  return { nearCopy: distance <= tuning.threshold, distance };
}

/** Both files decoded, then compared (the lead's candidates are files on local disk). */
export async function isNearCopy(a: Buffer, b: Buffer): Promise<{ nearCopy: boolean; distance: number }> {
  return compareSignatures(await imageSignature(a), await imageSignature(b));
}
