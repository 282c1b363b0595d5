import sharp from 'sharp';
import { startTestApp, multipart } from './support/app.js';
import * as images from './support/images.js';
const t = await startTestApp();
for (const [id, seed] of [['A', 1], ['B', 2], ['C', 3], ['D', 4], ['E', 5], ['F', 6]] as const) {
  await t.app.inject({ method: 'POST', url: '/ingest', ...(await multipart({ item_id: id, item_name: id }, { bytes: await images.jpeg(640, 480, seed) })) });
}
async function search(bytes: Buffer, label: string) {
  const r = await t.app.inject({ method: 'POST', url: '/search', ...(await multipart({ top_k: '5' }, { bytes })) });
  const j = r.json();
  console.log(label, j.match, j.results.map((x: any) => `${x.item_id}:${x.confidence.toFixed(2)}`).join(' '));
  return j;
}
const add = async (id: string, bytes: Buffer) => (await t.app.inject({ method: 'POST', url: `/items/${id}/images`, ...(await multipart({ kind: 'photo' }, { bytes })) })).statusCode;
const blend = (s1: number, s2: number, w: number) => {
  const a = images.photoPixels(640, 480, s1), b = images.photoPixels(640, 480, s2);
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.round(a[i]! * w + b[i]! * (1 - w));
  return sharp(out, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
};
const w = Number(process.argv[2]); const target = process.argv[3] ?? 'B';
const seedOf: Record<string, number> = { A: 1, B: 2, C: 3, D: 4, E: 5, F: 6 };
const np = Number(process.argv[4] ?? 0);
for (let i = 0; i < np; i++) await add('CDEF'[i % 4]!, await blend(60 + i, 'CDEF'.charCodeAt(i % 4) - 64, 0.5));
const p = await blend(1, seedOf[target]!, w);
await search(p, `blend A ${w} before`);
console.log('teach', await add(target, p));
await search(p, 'after teach');
await t.close();
