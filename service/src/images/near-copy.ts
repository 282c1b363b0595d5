// PROTOTYPE (top comment written once thresholds are measured).
import sharp from 'sharp';

export interface Signature {
  /** Working raster size (pixels). */
  width: number;
  height: number;
  /** Width / height of the oriented original, for the aspect check (the raster is rounded). */
  aspect: number;
  /** Summed-area table of the CIELAB raster: (width + 1) × (height + 1) × 3, row-major, zero first row/col. */
  table: Float64Array;
}

export const tuning = {
  side: 48,
  margin: 0.14,
  coarseStep: 0.035,
  aspectTolerance: 0.04,
  searchGrid: 8,
  verifyGrid: 12,
  threshold: 12,
  chromaWeight: 1,
  shift: 0,
};

export async function imageSignature(bytes: Buffer): Promise<Signature> {
  const image = sharp(bytes, { failOn: 'error', animated: false, autoOrient: true });
  const meta = await image.metadata();
  const oriented = meta.autoOrient ?? meta;
  const { data, info } = await image
    .flatten({ background: '#ffffff' })
    .resize(tuning.side, tuning.side, { fit: 'inside' })
    .toColourspace('lab')
    .raw({ depth: 'float' })
    .toBuffer({ resolveWithObject: true });
  const pixels = new Float32Array(data.buffer, data.byteOffset, data.length / 4);
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
  return { width, height, aspect: oriented.width! / oriented.height!, table };
}

/** Mean Lab colour of each cell of a G×G grid over [x0,x1]×[y0,y1] (normalised coordinates). */
function gridMeans(sig: Signature, x0: number, x1: number, y0: number, y1: number, g: number, out: Float64Array) {
  const { width, height, table } = sig;
  const stride = (width + 1) * 3;
  const corners = new Float64Array((g + 1) * (g + 1) * 3);
  const xi = new Int32Array(g + 1);
  const xf = new Float64Array(g + 1);
  for (let i = 0; i <= g; i++) {
    const x = Math.min(width, Math.max(0, (x0 + ((x1 - x0) * i) / g) * width));
    xi[i] = Math.min(width - 1, Math.floor(x));
    xf[i] = x - xi[i]!;
  }
  for (let j = 0; j <= g; j++) {
    const y = Math.min(height, Math.max(0, (y0 + ((y1 - y0) * j) / g) * height));
    const yi = Math.min(height - 1, Math.floor(y));
    const fy = y - yi;
    for (let i = 0; i <= g; i++) {
      const fx = xf[i]!;
      const t = yi * stride + xi[i]! * 3;
      for (let c = 0; c < 3; c++) {
        const top = table[t + c]! * (1 - fx) + table[t + 3 + c]! * fx;
        const bottom = table[t + stride + c]! * (1 - fx) + table[t + stride + 3 + c]! * fx;
        corners[(j * (g + 1) + i) * 3 + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  const area = ((x1 - x0) * width * (y1 - y0) * height) / (g * g);
  for (let j = 0; j < g; j++) {
    for (let i = 0; i < g; i++) {
      for (let c = 0; c < 3; c++) {
        const k = (p: number, q: number) => corners[(q * (g + 1) + p) * 3 + c]!;
        out[(j * g + i) * 3 + c] = (k(i + 1, j + 1) - k(i, j + 1) - k(i + 1, j) + k(i, j)) / area;
      }
    }
  }
}

interface Alignment {
  lx: number;
  rx: number;
  ly: number;
  ry: number;
}

function regions(p: Alignment) {
  return {
    a: [Math.max(p.lx, 0), 1 - Math.max(p.rx, 0), Math.max(p.ly, 0), 1 - Math.max(p.ry, 0)] as const,
    b: [Math.max(-p.lx, 0), 1 - Math.max(-p.rx, 0), Math.max(-p.ly, 0), 1 - Math.max(-p.ry, 0)] as const,
  };
}

function aspectOk(a: Signature, b: Signature, p: Alignment, tolerance: number): boolean {
  const r = regions(p);
  const aspectA = ((r.a[1] - r.a[0]) * a.aspect) / (r.a[3] - r.a[2]);
  const aspectB = ((r.b[1] - r.b[0]) * b.aspect) / (r.b[3] - r.b[2]);
  return Math.abs(Math.log(aspectA / aspectB)) <= tolerance;
}

/** Per-cell colour differences after fitting b's lightness to a's (gain + offset). */
function cellErrors(ma: Float64Array, mb: Float64Array, cells: number, out: Float64Array) {
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
  const gain = varB > 1e-6 ? Math.min(1.25, Math.max(0.8, cov / varB)) : 1;
  const offset = sa / cells - gain * (sb / cells);
  const w = tuning.chromaWeight;
  for (let k = 0; k < cells; k++) {
    const dl = ma[k * 3]! - (gain * mb[k * 3]! + offset);
    const da = ma[k * 3 + 1]! - mb[k * 3 + 1]!;
    const db = ma[k * 3 + 2]! - mb[k * 3 + 2]!;
    out[k] = Math.sqrt(dl * dl + w * (da * da + db * db));
  }
}

function evaluate(a: Signature, b: Signature, p: Alignment, g: number) {
  const r = regions(p);
  const ma = new Float64Array(g * g * 3);
  const mb = new Float64Array(g * g * 3);
  gridMeans(a, ...r.a, g, ma);
  gridMeans(b, ...r.b, g, mb);
  const errors = new Float64Array(g * g);
  cellErrors(ma, mb, g * g, errors);
  return errors;
}

function cost(a: Signature, b: Signature, p: Alignment): number {
  const errors = evaluate(a, b, p, tuning.searchGrid);
  let sum = 0;
  for (const e of errors) sum += e * e;
  return sum;
}

export function compareSignatures(a: Signature, b: Signature): { nearCopy: boolean; distance: number } {
  const m = tuning.margin;
  const steps: number[] = [];
  for (let v = -m; v <= m + 1e-9; v += tuning.coarseStep) steps.push(v);
  let best: Alignment | undefined;
  let bestCost = Infinity;
  for (const lx of steps)
    for (const rx of steps)
      for (const ly of steps)
        for (const ry of steps) {
          const p = { lx, rx, ly, ry };
          if (!aspectOk(a, b, p, tuning.aspectTolerance + tuning.coarseStep)) continue;
          const c = cost(a, b, p);
          if (c < bestCost) {
            bestCost = c;
            best = p;
          }
        }
  if (!best) return { nearCopy: false, distance: Infinity };
  for (let step = tuning.coarseStep / 2; step >= tuning.coarseStep / 8 - 1e-12; step /= 2) {
    let improved = true;
    while (improved) {
      improved = false;
      for (const key of ['lx', 'rx', 'ly', 'ry'] as const) {
        for (const d of [-step, step]) {
          const p = { ...best, [key]: Math.min(m, Math.max(-m, best[key] + d)) };
          if (!aspectOk(a, b, p, tuning.aspectTolerance)) continue;
          const c = cost(a, b, p);
          if (c < bestCost) {
            bestCost = c;
            best = p;
            improved = true;
          }
        }
      }
    }
  }
  const errors = evaluate(a, b, best, tuning.verifyGrid);
  const distance = Math.max(...errors);
  return { nearCopy: distance <= tuning.threshold, distance };
}

export async function isNearCopy(a: Buffer, b: Buffer) {
  return compareSignatures(await imageSignature(a), await imageSignature(b));
}
