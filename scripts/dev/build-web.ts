// Builds the staff page (service/web) into service/web/dist: esbuild bundles src/main.ts and the CSS it
// imports into content-hashed files under app/, index.html gets those names, favicon.ico is drawn from
// icon.svg, and every text file also gets a brotli and a gzip copy (served as they are, no compression at
// request time). The result replaces the previous build in one rename, so a running server never sees
// half a build. Not committed: the sources are the only truth and a build takes well under a second.
// `npm run build:web` (npm start, the tests and the Docker build run it).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import sharp from 'sharp';
import { runTool } from './tool.js';

export const WEB_SOURCE = fileURLToPath(new URL('../../service/web/', import.meta.url));
export const WEB_DIST = path.join(WEB_SOURCE, 'dist');

/** Browsers the page supports: those of phones and desktops from 2021 on. */
const TARGETS = ['chrome100', 'edge100', 'firefox100', 'safari15', 'ios15'];
const COMPRESSED = new Set(['.html', '.js', '.css', '.svg']);

export interface WebFile {
  /** Path under dist (forward slashes). */
  file: string;
  bytes: number;
  gzip?: number;
  brotli?: number;
}

/** The smallest .ico Windows and browsers accept: one 32×32 PNG image in an ICO directory. */
function icoOf(png: Buffer): Buffer {
  const header = Buffer.alloc(22);
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(1, 4); // one image
  header.writeUInt8(32, 6); // width
  header.writeUInt8(32, 7); // height
  header.writeUInt16LE(1, 10); // colour planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(png.length, 14);
  header.writeUInt32LE(22, 18); // offset of the image
  return Buffer.concat([header, png]);
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
}

export async function buildWeb(outDir = WEB_DIST): Promise<WebFile[]> {
  const staging = `${outDir}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    const result = await build({
      entryPoints: [path.join(WEB_SOURCE, 'src/main.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: TARGETS,
      minify: true,
      legalComments: 'none',
      outdir: path.join(staging, 'app'),
      entryNames: '[name]-[hash]',
      metafile: true,
      logLevel: 'silent',
    });
    const outputs = Object.entries(result.metafile.outputs);
    const [script, meta] = outputs.find(([, output]) => output.entryPoint)!;
    const names = { js: path.basename(script), css: path.basename(meta.cssBundle ?? '') };
    if (!meta.cssBundle) throw new Error('The page bundle has no CSS: main.ts must import app.css.');

    let html = await readFile(path.join(WEB_SOURCE, 'index.html'), 'utf8');
    for (const [kind, name] of Object.entries(names)) {
      const placeholder = `/app/main.${kind}`;
      if (!html.includes(`"${placeholder}"`)) throw new Error(`index.html does not load ${placeholder}.`);
      html = html.replace(`"${placeholder}"`, `"/app/${name}"`);
    }
    await writeFile(path.join(staging, 'index.html'), html);
    const icon = await sharp(path.join(WEB_SOURCE, 'icon.svg')).resize(32, 32).png().toBuffer();
    await writeFile(path.join(staging, 'favicon.ico'), icoOf(icon));

    const files: WebFile[] = [];
    for (const file of (await listFiles(staging)).sort()) {
      const bytes = await readFile(path.join(staging, file));
      const entry: WebFile = { file, bytes: bytes.length };
      if (COMPRESSED.has(path.extname(file))) {
        const brotli = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
        const gzip = gzipSync(bytes, { level: 9 });
        await writeFile(path.join(staging, `${file}.br`), brotli);
        await writeFile(path.join(staging, `${file}.gz`), gzip);
        Object.assign(entry, { gzip: gzip.length, brotli: brotli.length });
      }
      files.push(entry);
    }

    // Swap: the old build moves aside, the new one takes its place, the old one goes.
    await mkdir(path.dirname(outDir), { recursive: true });
    const old = `${outDir}.old-${randomBytes(4).toString('hex')}`;
    if (existsSync(outDir)) await rename(outDir, old);
    await rename(staging, outDir);
    await rm(old, { recursive: true, force: true });
    return files;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runTool('Usage: npm run build:web\n\nBuilds the staff page into service/web/dist.', async () => {
    const files = await buildWeb();
    for (const { file, bytes, gzip } of files) {
      console.log(`${file.padEnd(32)} ${String(bytes).padStart(8)} B${gzip ? `  (gzip ${gzip} B)` : ''}`);
    }
    console.log(`built ${path.relative(process.cwd(), WEB_DIST) || WEB_DIST}`);
  });
}
