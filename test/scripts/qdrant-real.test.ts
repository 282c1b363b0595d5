// The operations commands against a real Qdrant, when QDRANT_URL names one on this host (e.g.
// `docker run -p 6333:6333 qdrant/qdrant:v1.18.3`): real snapshot files, real upload-recover, real
// alias switches. Everything happens under a fresh alias (opstest_<time>_<random>) and is deleted
// afterwards, so other data in that Qdrant is never touched. Skipped, with the reason printed, otherwise.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../scripts/backup.js';
import { checkConsistency } from '../../scripts/consistency.js';
import { dropOld, migrate, rollback, type MigrateDeps } from '../../scripts/migrate/index.js';
import { storeBackup } from '../../service/src/store/open-store.js';
import { QdrantSnapshots } from '../../service/src/store/qdrant/snapshots.js';
import { runRestore } from '../../scripts/restore.js';
import { ImageFiles } from '../../service/src/catalog/image-files.js';
import type { ModelRegistry } from '../../service/src/embedding/registry.js';
import { createQdrantStore, type QdrantStore } from '../../service/src/store/qdrant/store.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { writeTestModel } from '../support/onnx-model.js';
import { realQdrantSkipReason } from '../support/real-qdrant.js';
import { ingest, picture, recordingReporter, registryFor, search } from './helpers.js';

const skip = realQdrantSkipReason();
if (skip) console.warn(`[ops on a real Qdrant] skipped — ${skip}`);

describe.skipIf(skip !== undefined)(`ops on a real Qdrant at QDRANT_URL${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const url = process.env.QDRANT_URL!;
  const apiKey = process.env.QDRANT_API_KEY || undefined;
  const alias = `opstest_${Date.now()}_${randomBytes(3).toString('hex')}`;
  let t: TestApp;
  let store: QdrantStore;
  let models: ModelRegistry;
  let newModel: string;

  beforeAll(async () => {
    t = await startTestApp({
      model: { name: 'mobilenet_v3_small', dim: 576, seed: 1 },
      env: { QDRANT_URL: url, ...(apiKey ? { QDRANT_API_KEY: apiKey } : {}), QDRANT_COLLECTION: alias },
      store: () => createQdrantStore({ url, apiKey }),
    });
    newModel = writeTestModel({
      dir: path.join(t.dir, 'models'),
      name: 'efficientnet_b0',
      dim: 1280,
      seed: 2,
    }).onnxPath;
    store = createQdrantStore({ url, apiKey });
    models = registryFor(t.config.modelPath);
    for (let i = 1; i <= 4; i++) await ingest(t, `SKU-${i}`, await picture(i));
  });

  afterAll(async () => {
    const snapshots = new QdrantSnapshots(store, url, apiKey);
    for (const collection of await store.listCollections().catch(() => [])) {
      if (collection.name !== alias && !collection.name.startsWith(`${alias}_`)) continue;
      for (const snapshot of await snapshots.list(collection.name).catch(() => []))
        await snapshots.delete(collection.name, snapshot.name).catch(() => undefined);
      await store.deleteCollection(collection.name).catch(() => undefined);
    }
    await models?.close();
    await store?.close();
    await t?.close();
  });

  const backupDir = () => path.join(t.dir, 'backups');
  const files = () => new ImageFiles(t.config.imageStorageDir);

  it('backs up, restores and checks', async () => {
    const backup = await runBackup({
      store,
      files: files(),
      alias,
      backupDir: backupDir(),
      keep: 2,
      reporter: recordingReporter(),
      backup: storeBackup(t.config, store, { info: () => {}, warn: () => {} }),
    });
    expect(backup).toMatchObject({ store: 'qdrant', points: 4, images: 4 });
    expect((await t.app.inject({ method: 'DELETE', url: '/items/SKU-2' })).statusCode).toBe(200);
    const restored = await runRestore({
      kind: 'qdrant',
      openStore: () => createQdrantStore({ url, apiKey }),
      files: files(),
      alias,
      backupDir: backupDir(),
      reporter: recordingReporter(),
      backupOf: (opened) => storeBackup(t.config, opened, { info: () => {}, warn: () => {} }),
    });
    expect(restored.check).toMatchObject({ points: 4, pointsWithoutFile: 0, filesWithoutPoint: 0, ok: true });
    expect(
      (await checkConsistency({ store, files: files(), alias, verifyHashes: true, reporter: recordingReporter() })).ok,
    ).toBe(true);
    expect((await search(t, await picture(2))).results[0].item_id).toBe('SKU-2');
  });

  it('migrates 576 → 1280, rolls back and drops the old collection', async () => {
    const deps: MigrateDeps = {
      store,
      files: files(),
      models,
      alias,
      modelPath: t.config.modelPath,
      backupDir: backupDir(),
      reporter: recordingReporter(),
    };
    const summary = await migrate(deps, { toModel: newModel, batchSize: 2, verifySample: 4, settleMs: 1500 });
    expect(summary).toMatchObject({ to: `${alias}_efficientnet_b0_1280`, points: 4, missing: 0 });
    expect((await store.listAliases())[alias]).toBe(`${alias}_efficientnet_b0_1280`);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await search(t, await picture(3))).results[0].item_id).toBe('SKU-3');
    await rollback(deps, { settleMs: 1500 });
    expect((await store.listAliases())[alias]).toBe(`${alias}_mobilenet_v3_small_576`);
    await dropOld(deps);
    expect((await store.listCollections()).map((c) => c.name).filter((name) => name.startsWith(alias))).toEqual([
      `${alias}_mobilenet_v3_small_576`,
    ]);
  });
});
