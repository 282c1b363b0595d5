import { readFileSync, readdirSync } from 'node:fs';
import sharp from 'sharp';
import { preprocess } from '../service/src/images/preprocess.js';
const spec = { resize: 256, crop: 224, mean: [0.485, 0.456, 0.406] as const, std: [0.229, 0.224, 0.225] as const };
const dir = 'test/fixtures/parity';
for (const f of readdirSync(dir).filter(f => !f.includes('.ref.'))) {
  const name = f.replace(/\.(jpg|png)$/, '');
  const t = await preprocess(readFileSync(`${dir}/${f}`), spec, { maxPixels: 1e8 });
  const { data } = await sharp(`${dir}/${name}.ref.png`).raw().toBuffer({ resolveWithObject: true });
  let sum = 0, max = 0, dot = 0, na = 0, nb = 0; const A = 224*224;
  for (let c = 0; c < 3; c++) for (let i = 0; i < A; i++) {
    const px = (t[c*A+i] * spec.std[c] + spec.mean[c]) * 255; const r = data[i*3+c];
    const d = Math.abs(px - r); sum += d; max = Math.max(max, d);
    const rn = (r/255 - spec.mean[c]) / spec.std[c]; dot += rn * t[c*A+i]; na += rn*rn; nb += t[c*A+i]**2;
  }
  console.log(name, 'mean', (sum/(3*A)).toFixed(3), 'max', max.toFixed(1), 'cos', (dot/Math.sqrt(na*nb)).toFixed(7));
}
