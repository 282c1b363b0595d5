// Builds the real app (embedded store, real ONNX test model, real files) in a temp directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../service/src/app.js';
import type { Catalog } from '../../service/src/catalog/catalog.js';
import { loadConfig, type Config } from '../../service/src/config.js';
import type { ErpNextOverrides } from '../../service/src/erpnext/connector.js';
import type { UrlFetchPolicy } from '../../service/src/images/fetch-url.js';
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import type { VectorStore } from '../../service/src/store/port.js';
import { openService, type Service } from '../../service/src/service.js';
import { writeTestModel } from './onnx-model.js';

export interface TestApp {
  app: FastifyInstance;
  catalog: Catalog;
  store: VectorStore;
  service: Service;
  config: Config;
  dir: string;
  close(): Promise<void>;
}

export async function startTestApp(
  options: {
    env?: Record<string, string>;
    store?: (config: Config) => VectorStore;
    urlPolicy?: Partial<UrlFetchPolicy>;
    /** ERPNext connector settings (fast retries, the scheduler's first run). */
    erpnext?: ErpNextOverrides;
    /** The model MODEL_PATH names (default test_model, 64-d), written to <dir>/models. */
    model?: { name: string; dim: number; seed?: number };
  } = {},
): Promise<TestApp> {
  const dir = mkdtempSync(path.join(tmpdir(), 'app-'));
  const model = writeTestModel({ dir: path.join(dir, 'models'), name: 'test_model', dim: 64, ...options.model });
  const config = loadConfig({ DATA_DIR: path.join(dir, 'data'), MODEL_PATH: model.onnxPath, ...options.env });
  const service = await openService(
    config,
    { info: () => {}, warn: () => {} },
    options.store?.(config) ?? openEmbeddedStore({ dataDir: config.dataDir }),
  );
  const app = await buildApp({
    config,
    catalog: service.catalog,
    storeKind: service.store.kind,
    models: service.models,
    urlPolicy: options.urlPolicy,
    erpnext: options.erpnext,
  });
  return {
    app,
    catalog: service.catalog,
    store: service.store,
    service,
    config,
    dir,
    async close() {
      await app.close();
      await service.close().catch(() => {}); // some tests close the store themselves
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A multipart body built by the platform's FormData, as an HTTP client would send it. */
export async function multipart(
  fields: Record<string, string>,
  file?: { bytes: Buffer; name?: string; type?: string },
) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  if (file)
    form.append(
      'file',
      new Blob([file.bytes], { type: file.type ?? 'application/octet-stream' }),
      file.name ?? 'photo.jpg',
    );
  const request = new Request('http://localhost/', { method: 'POST', body: form });
  return {
    payload: Buffer.from(await request.arrayBuffer()),
    headers: { 'content-type': request.headers.get('content-type')! },
  };
}
