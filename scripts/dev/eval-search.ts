// Search-quality evaluation through the real HTTP API (an evaluation, not a test; reads ../shared):
//   npm run eval:search -- [--model PATH] [--data DIR]
// Ingests the catalog ("iconic") image of every product, searches with every store photo, and reports
// how often the right product comes first and in the top 5.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../service/src/app.js';
import { loadConfig } from '../../service/src/config.js';
import { openService } from '../../service/src/service.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../shared/models/mobilenetv2-int8-pretrained.onnx' },
    data: { type: 'string', default: '../shared/data/grocery-dev' },
  },
});

interface Row {
  file: string;
  item: string;
  kind: string;
}

function readManifest(dir: string): Row[] {
  const [header, ...lines] = readFileSync(path.join(dir, 'manifest.csv'), 'utf8').trim().split('\n');
  const columns = header.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(columns.map((column, i) => [column, cells[i]])) as unknown as Row;
  });
}

async function post(app: FastifyInstance, url: string, fields: Record<string, string>, file: Buffer) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  form.append('file', new Blob([file]), 'photo.jpg');
  const request = new Request('http://localhost/', { method: 'POST', body: form });
  const response = await app.inject({
    method: 'POST',
    url,
    payload: Buffer.from(await request.arrayBuffer()),
    headers: { 'content-type': request.headers.get('content-type')! },
  });
  if (response.statusCode >= 300) throw new Error(`${url} → ${response.statusCode} ${response.body}`);
  return response.json<unknown>();
}

async function main(): Promise<void> {
  const rows = readManifest(values.data);
  const dir = mkdtempSync(path.join(tmpdir(), 'eval-'));
  const config = loadConfig({ DATA_DIR: dir, MODEL_PATH: values.model });
  const service = await openService(config, { info: () => {}, warn: (m) => console.warn(m) });
  const app = await buildApp({ config, catalog: service.catalog, storeKind: service.store.kind });
  try {
    const catalog = rows.filter((row) => row.kind === 'iconic');
    for (const row of catalog) {
      await post(
        app,
        '/ingest',
        { item_id: row.item, item_name: row.item },
        readFileSync(path.join(values.data, row.file)),
      );
    }
    const photos = rows.filter((row) => row.kind !== 'iconic');
    let first = 0;
    let top5 = 0;
    const started = performance.now();
    for (const row of photos) {
      const { results } = (await post(
        app,
        '/search',
        { top_k: '5' },
        readFileSync(path.join(values.data, row.file)),
      )) as { results: Array<{ item_id: string }> };
      const ids = results.map((result) => result.item_id);
      if (ids[0] === row.item) first++;
      if (ids.includes(row.item)) top5++;
    }
    const perSearch = (performance.now() - started) / photos.length;
    console.log(
      `model ${values.model}; ${catalog.length} catalog images ingested, ${photos.length} store photos searched`,
    );
    console.log(
      `right product first: ${((100 * first) / photos.length).toFixed(1)}% (${first}/${photos.length}); in top ` +
        `5: ${((100 * top5) / photos.length).toFixed(1)}% (${top5}/${photos.length})`,
    );
    console.log(`mean time per search request (decode, embed, search, in-process): ${perSearch.toFixed(1)} ms`);
  } finally {
    await app.close();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
