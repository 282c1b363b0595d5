// The search-quality protocols shared by `npm run eval:search` (what the numbers are) and
// `npm run fit:confidence` (where the confidence constants come from), so both measure the same thing.
// A data set is a folder with manifest.csv (file,item,kind: `iconic` = a catalog picture of the product,
// anything else = a store photo of it) and the images. Which store photos become references is
// deterministic (the first three by file name), and the roles that leave products out or give them photos
// rotate with `rotation`, so every product can play every role. The service runs in this process with its
// own data folder and is driven through real HTTP on 127.0.0.1.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildApp } from '../../service/src/app.js';
import { loadConfig } from '../../service/src/config.js';
import { openService, type Service } from '../../service/src/service.js';
import { ToolUsageError } from './tool.js';

export interface Product {
  item: string;
  /** Catalog pictures (manifest kind `iconic`). */
  catalog: string[];
  /** Store photos, by file name. */
  photos: string[];
}

export const PROTOCOLS = ['catalog-only', 'catalog+3', 'mixed', 'mixed-as-catalog-only', 'no-match'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];

export const PROTOCOL_TITLES: Record<ProtocolName, string> = {
  'catalog-only': 'catalog images only, every store photo a query',
  'catalog+3': 'catalog image + 3 store photos per product',
  mixed: 'mixed: 2/3 of the products with 3 store photos',
  'mixed-as-catalog-only': 'the same queries, catalog images only',
  'no-match': 'no match: 1/3 of the products left out',
};

/** Store photos per product used as references in the protocols with photos. */
export const REFERENCE_PHOTOS = 3;

export interface Reference {
  item: string;
  file: string;
  kind: 'catalog' | 'photo';
}

export interface Query {
  item: string;
  file: string;
  /** False when the product is not in the catalog (the right answer is "none"). */
  inCatalog: boolean;
}

export interface Protocol {
  name: ProtocolName;
  references: Reference[];
  queries: Query[];
}

/** The two flags every search evaluation takes (--model, --data), with the data set's products read. */
export function evaluationArgs(): { model: string; data: string; products: Product[] } {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: '../shared/models/mobilenetv2-int8-pretrained.onnx' },
      data: { type: 'string', default: '../shared/data/grocery-dev' },
    },
  });
  return { model: values.model, data: values.data, products: readProducts(values.data) };
}

export function readProducts(dir: string): Product[] {
  const manifest = path.join(dir, 'manifest.csv');
  if (!existsSync(manifest)) {
    throw new ToolUsageError(
      `${manifest} does not exist: pass --data DIR, a folder with manifest.csv (file,item,kind) and the images ` +
        `(the development set is ../shared/data/grocery-dev)`,
    );
  }
  const [header = '', ...lines] = readFileSync(manifest, 'utf8').trim().split(/\r?\n/);
  const columns = header.split(',');
  const at = (name: string) => {
    const index = columns.indexOf(name);
    if (index < 0) throw new ToolUsageError(`${manifest} has no column "${name}" (columns: ${header})`);
    return index;
  };
  const [file, item, kind] = [at('file'), at('item'), at('kind')];
  const products = new Map<string, Product>();
  for (const line of lines) {
    const cells = line.split(',');
    const name = cells[item]!;
    const product = products.get(name) ?? { item: name, catalog: [], photos: [] };
    products.set(name, product);
    (cells[kind] === 'iconic' ? product.catalog : product.photos).push(path.join(dir, cells[file]!));
  }
  const usable = [...products.values()].filter((p) => p.catalog.length > 0);
  if (usable.length < 3) throw new ToolUsageError(`${manifest} lists fewer than 3 products with a catalog picture`);
  for (const product of usable) product.photos.sort();
  return usable.sort((a, b) => (a.item < b.item ? -1 : a.item > b.item ? 1 : 0));
}

export function protocolOf(name: ProtocolName, products: Product[], rotation = 0): Protocol {
  const references: Reference[] = [];
  const queries: Query[] = [];
  products.forEach((product, index) => {
    const role = (index + rotation) % 3;
    const inCatalog = name !== 'no-match' || role !== 0;
    const withPhotos = name === 'catalog+3' || name === 'no-match' || (name === 'mixed' && role !== 2);
    if (inCatalog) {
      for (const file of product.catalog) references.push({ item: product.item, file, kind: 'catalog' });
      if (withPhotos) {
        for (const file of product.photos.slice(0, REFERENCE_PHOTOS))
          references.push({ item: product.item, file, kind: 'photo' });
      }
    }
    const asked = name === 'catalog-only' ? product.photos : product.photos.slice(REFERENCE_PHOTOS);
    for (const file of asked) queries.push({ item: product.item, file, inCatalog });
  });
  return { name, references, queries };
}

/** One answer row as the API returns it. */
export interface ResultRow {
  item_id: string;
  score: number;
  confidence: number;
  kind: string;
}

export interface SearchResponse {
  match: 'confident' | 'uncertain' | 'none';
  results: ResultRow[];
}

/** The service on a fresh data folder, listening on 127.0.0.1 (no API key: loopback only). */
export class ServiceUnderTest {
  private constructor(
    readonly base: string,
    readonly service: Service,
    private readonly stop: () => Promise<void>,
  ) {}

  static async start(modelPath: string): Promise<ServiceUnderTest> {
    if (!existsSync(modelPath)) throw new ToolUsageError(`--model ${modelPath} does not exist`);
    const dir = mkdtempSync(path.join(tmpdir(), 'search-eval-'));
    const config = loadConfig({
      DATA_DIR: dir,
      MODEL_PATH: modelPath,
      MAX_TOP_K: '50',
      ...(process.env.SEARCH_ZOOM ? { SEARCH_ZOOM: process.env.SEARCH_ZOOM } : {}),
    });
    const quiet = { info: () => {}, warn: (message: string) => console.warn(message) };
    const service = await openService(config, quiet);
    const app = await buildApp({ config, catalog: service.catalog, storeKind: service.store.kind });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    return new ServiceUnderTest(`http://127.0.0.1:${port}`, service, async () => {
      await app.close();
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    });
  }

  async close(): Promise<void> {
    await this.stop();
  }

  async request<T>(method: string, url: string, fields?: Record<string, string>, file?: string): Promise<T> {
    let body: FormData | undefined;
    if (fields || file) {
      body = new FormData();
      for (const [key, value] of Object.entries(fields ?? {})) body.append(key, value);
      if (file) body.append('file', new Blob([readFileSync(file)]), path.basename(file));
    }
    const response = await fetch(`${this.base}${url}`, { method, body });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${url} → ${response.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** Empties the catalog and stores the protocol's references through /ingest and /items/{id}/images. */
  async load(protocol: Protocol): Promise<void> {
    await this.request('DELETE', '/items');
    const started = new Set<string>();
    for (const { item, file, kind } of protocol.references) {
      if (started.has(item)) {
        await this.request('POST', `/items/${encodeURIComponent(item)}/images`, { kind }, file);
      } else {
        await this.request('POST', '/ingest', { item_id: item, item_name: item, kind }, file);
        started.add(item);
      }
    }
  }

  search(file: string, topK = 5): Promise<SearchResponse> {
    return this.request<SearchResponse>('POST', '/search', { top_k: String(topK) }, file);
  }

  async embed(file: string): Promise<Float32Array> {
    const { vector } = await this.request<{ vector: number[] }>('POST', '/embed', {}, file);
    return Float32Array.from(vector);
  }
}

/** Area under the ROC curve: how often a right answer's value beats a wrong one's (ties count half). */
export function auroc(values: Array<{ right: boolean; value: number }>): number {
  const sorted = [...values].sort((a, b) => a.value - b.value);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j < sorted.length && sorted[j]!.value === sorted[i]!.value) j++;
    const midRank = (i + j + 1) / 2; // ranks are 1-based
    for (let k = i; k < j; k++) {
      if (sorted[k]!.right) {
        rankSum += midRank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = sorted.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
