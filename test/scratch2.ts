import sharp from 'sharp';
import { pilBilinearWindow } from '../service/src/images/pil-bilinear.js';
import { planGeometry } from '../service/src/images/preprocess.js';
for (const name of ['small-200x150', 'lossless-640x427']) {
const src = `test/fixtures/parity/${name}.png`;
const { data, info } = await sharp(src).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const g = planGeometry(info.width, info.height, { resize: 256, crop: 224 });
const out = pilBilinearWindow(data, { width: info.width, height: info.height, channels: 3 }, g.resized, g.crop);
const ref = (await sharp(`test/fixtures/parity/${name}.ref.png`).raw().toBuffer());
let max = 0, sum = 0; for (let i = 0; i < ref.length; i++) { const d = Math.abs(ref[i] - out[i]); max = Math.max(max, d); sum += d; }
console.log(name, 'JS pil: mean', sum / ref.length, 'max', max);
}
