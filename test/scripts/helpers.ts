// Shared pieces of the operations tests: a reporter that records what a command says, ingesting through
// the real API, the two stores every end-to-end test runs against (embedded, and Qdrant through the
// strict double), and what backup and restore need for a test app.
import { expect } from 'vitest';
import type { BackupDeps } from '../../scripts/backup.js';
import type { Reporter } from '../../scripts/cli.js';
import type { RestoreDeps } from '../../scripts/restore.js';
import { ImageFiles } from '../../service/src/catalog/image-files.js';
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import { storeBackup } from '../../service/src/store/open-store.js';
import { ModelRegistry } from '../../service/src/embedding/registry.js';
import { createQdrantStore } from '../../service/src/store/qdrant/store.js';
import { multipart, startTestApp, type TestApp } from '../support/app.js';
import * as images from '../support/images.js';
import { QdrantDouble } from '../support/qdrant-double.js';

export interface RecordingReporter extends Reporter {
  messages: string[];
  warnings: string[];
  summaries: object[];
  /** Progress labels and their final counts. */
  progressed: Array<{ label: string; count: number; total: number }>;
}

/** `onAdvance` runs on every progress step with the label and the count so far (tests interrupt from there). */
export function recordingReporter(onAdvance?: (label: string, count: number) => void): RecordingReporter {
  const reporter: RecordingReporter = {
    messages: [],
    warnings: [],
    summaries: [],
    progressed: [],
    info: (message) => void reporter.messages.push(message),
    warn: (message) => void reporter.warnings.push(message),
    summary: (fields) => void reporter.summaries.push(fields),
    progress(label, total) {
      const entry = { label, count: 0, total };
      reporter.progressed.push(entry);
      return {
        advance(n = 1) {
          entry.count += n;
          onAdvance?.(label, entry.count);
        },
        done() {},
      };
    },
  };
  return reporter;
}

export function registryFor(modelPath: string): ModelRegistry {
  return new ModelRegistry(modelPath, { threads: 1, concurrency: 2, queueMax: 100_000, maxPixels: 100_000_000 });
}

export async function ingest(t: TestApp, itemId: string, bytes: Buffer) {
  const response = await t.app.inject({
    method: 'POST',
    url: '/ingest',
    ...(await multipart({ item_id: itemId, item_name: `Item ${itemId}` }, { bytes })),
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as { item_id: string; image_id: string; model: string };
}

export async function addImage(t: TestApp, itemId: string, bytes: Buffer) {
  const response = await t.app.inject({
    method: 'POST',
    url: `/items/${encodeURIComponent(itemId)}/images`,
    ...(await multipart({}, { bytes })),
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as { item_id: string; image_id: string };
}

export async function search(t: TestApp, bytes: Buffer, topK = 3) {
  const response = await t.app.inject({
    method: 'POST',
    url: '/search',
    ...(await multipart({ top_k: String(topK) }, { bytes })),
  });
  return {
    status: response.statusCode,
    results: response.statusCode === 200 ? (response.json().results as Array<{ item_id: string; score: number }>) : [],
  };
}

/** Distinct test pictures: the seed decides the picture. */
export const picture = (seed: number) => images.jpeg(160, 120, seed);

/** A running API on one of the two stores, and the double behind it when there is one. */
export interface StoreSetup {
  kind: 'embedded' | 'qdrant';
  start(
    options?: Parameters<typeof startTestApp>[0],
  ): Promise<{ t: TestApp; double?: QdrantDouble; close(): Promise<void> }>;
}

export const STORES: StoreSetup[] = [
  {
    kind: 'embedded',
    async start(options = {}) {
      const t = await startTestApp(options);
      return { t, close: () => t.close() };
    },
  },
  {
    kind: 'qdrant',
    async start(options = {}) {
      const double = await QdrantDouble.start();
      const t = await startTestApp({
        ...options,
        env: { QDRANT_URL: double.url, ...options.env },
        store: () => createQdrantStore({ url: double.url }),
      });
      return {
        t,
        double,
        async close() {
          await t.close();
          await double.close();
          double.assertNoViolations();
        },
      };
    },
  },
];

const quietLog = { info: () => {}, warn: () => {} };

/** What runBackup needs to back up a test app's store and images into `backupDir` (keeping 3). */
export function backupDepsOf(t: TestApp, backupDir: string, overrides: Partial<BackupDeps> = {}): BackupDeps {
  return {
    store: t.store,
    files: new ImageFiles(t.config.imageStorageDir),
    alias: 'items',
    backupDir,
    keep: 3,
    reporter: recordingReporter(),
    backup: storeBackup(t.config, t.store, quietLog),
    ...overrides,
  };
}

/** What runRestore needs for a test app: a new store of the same kind (the double's, or the data dir's). */
export function restoreDepsOf(
  t: TestApp,
  kind: 'embedded' | 'qdrant',
  double: QdrantDouble | undefined,
  backupDir: string,
  overrides: Partial<RestoreDeps> = {},
): RestoreDeps {
  return {
    kind,
    openStore: () =>
      double ? createQdrantStore({ url: double.url }) : openEmbeddedStore({ dataDir: t.config.dataDir }),
    files: new ImageFiles(t.config.imageStorageDir),
    alias: 'items',
    backupDir,
    reporter: recordingReporter(),
    backupOf: (store) => storeBackup(t.config, store, quietLog),
    ...overrides,
  };
}
