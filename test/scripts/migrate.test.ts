// The model migration end to end, on the embedded store and on the Qdrant double: a real API serves a
// collection made by a 576-d model while `migrate` re-embeds every stored original with a 1280-d model
// (both real ONNX models made here), switches the alias, and the API follows.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpsError } from '../../scripts/cli.js';
import { dropOld, migrate, rollback, type MigrateDeps, type MigrateOptions } from '../../scripts/migrate/index.js';
import { migrationStatePath, readMigrationState } from '../../scripts/migrate/state.js';
import { pointIds, scanPoints } from '../../scripts/points.js';
import { ImageFiles, sha256Hex } from '../../service/src/catalog/image-files.js';
import type { ModelRegistry } from '../../service/src/embedding/registry.js';
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import type { VectorStore } from '../../service/src/store/port.js';
import { createQdrantStore, type QdrantStore } from '../../service/src/store/qdrant/store.js';
import { multipart, type TestApp } from '../support/app.js';
import { writeTestModel } from '../support/onnx-model.js';
import type { QdrantDouble } from '../support/qdrant-double.js';
import { addImage, ingest, picture, recordingReporter, registryFor, search, STORES } from './helpers.js';
import { recordFrom } from '../../service/src/schemas/records.js';

const OLD = { name: 'mobilenet_v3_small', dim: 576, seed: 1 };
const NEW = { name: 'efficientnet_b0', dim: 1280, seed: 2 };
const OLD_COLLECTION = 'items_mobilenet_v3_small_576';
const NEW_COLLECTION = 'items_efficientnet_b0_1280';
const ITEMS = 10;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.each(STORES)('migrate 576 → 1280 on the $kind store', (setup) => {
  let t: TestApp;
  let double: QdrantDouble | undefined;
  let close: () => Promise<void>;
  /** The migration's own connection to the store, as a separate process would have. */
  let store: VectorStore;
  let models: ModelRegistry;
  let newModel: string;

  beforeEach(async () => {
    ({ t, double, close } = await setup.start({ model: OLD }));
    // Beside MODEL_PATH, where the API looks for the model of a migrated collection.
    newModel = writeTestModel({ dir: path.join(t.dir, 'models'), ...NEW }).onnxPath;
    store = double ? createQdrantStore({ url: double.url }) : openEmbeddedStore({ dataDir: t.config.dataDir });
    models = registryFor(t.config.modelPath);
    for (let i = 1; i <= ITEMS; i++) await ingest(t, `SKU-${i}`, await picture(i));
    await addImage(t, 'SKU-1', await picture(100));
  });
  afterEach(async () => {
    await models.close();
    await store.close();
    await close();
  });

  const deps = (overrides: Partial<MigrateDeps> = {}): MigrateDeps => ({
    store,
    files: new ImageFiles(t.config.imageStorageDir),
    models,
    alias: 'items',
    modelPath: t.config.modelPath,
    backupDir: path.join(t.dir, 'backups'),
    reporter: recordingReporter(),
    sleep,
    ...overrides,
  });
  const options = (overrides: Partial<MigrateOptions> = {}): MigrateOptions => ({
    toModel: newModel,
    batchSize: 4,
    verifySample: 5,
    settleMs: 1500,
    ...overrides,
  });
  const aliasTarget = async () => (await store.listAliases()).items;
  const collectionOf = async (name: string) => (await store.listCollections()).find((c) => c.name === name);
  const ready = async () =>
    (await t.app.inject({ method: 'GET', url: '/ready' })).json() as { collection: string; model: string; dim: number };

  it(
    'switches the alias to the re-embedded collection while the API keeps serving; ingests during the ' +
      'migration are not lost',
    async () => {
      const ec2Calls: string[] = [];
      let running = true;
      const ingested: string[] = [];
      const statuses: number[] = [];
      const traffic = (async () => {
        for (let k = 0; running; k++) {
          const itemId = `live-${k}`;
          await ingest(t, itemId, await picture(500 + k));
          ingested.push(itemId);
          const found = await search(t, await picture(2));
          statuses.push(found.status);
          await sleep(40);
        }
      })();
      const reporter = recordingReporter();
      const summary = await migrate(
        deps({
          reporter,
          ec2: {
            detect: async () => ({ instanceId: 'i-0abc', region: 'eu-west-1' }),
            snapshot: async (_id, reason) => (ec2Calls.push(reason), 'snap-0123'),
          },
        }),
        options(),
      ).finally(() => (running = false));
      await traffic;

      expect(ec2Calls).toEqual(['before migrating items to efficientnet_b0']);
      expect(summary).toMatchObject({
        what: 'migrate',
        from: OLD_COLLECTION,
        to: NEW_COLLECTION,
        missing: 0,
        ebsSnapshot: 'snap-0123',
      });
      expect(await aliasTarget()).toBe(NEW_COLLECTION);
      expect(ingested.length).toBeGreaterThan(0);
      expect(statuses.every((status) => status === 200)).toBe(true);

      // Every point made it, the ones ingested during the migration included, each re-embedded at 1280-d.
      const migrated = store.collection(NEW_COLLECTION);
      const old = await pointIds(store.collection(OLD_COLLECTION));
      const ids = await pointIds(migrated);
      expect(ids.size).toBe(ITEMS + 1 + ingested.length);
      expect([...old].every((id) => ids.has(id))).toBe(true);
      for (const itemId of ingested) expect((await migrated.itemImages(itemId)).length).toBe(1);
      for await (const { record, vector } of scanPoints(migrated, { withVectors: true })) {
        expect(record.model).toBe('efficientnet_b0');
        expect(vector!.length).toBe(1280);
      }
      // (The traffic loop may finish one more ingest after migrate returned.)
      expect(summary.points).toBeGreaterThanOrEqual(ids.size - 1);

      // The API has followed: it searches the new collection with the new model.
      await sleep(1100);
      expect(await ready()).toMatchObject({ collection: NEW_COLLECTION, model: 'efficientnet_b0', dim: 1280 });
      expect((await search(t, await picture(3))).results[0].item_id).toBe('SKU-3');
      await ingest(t, 'after-switch', await picture(900));
      expect((await migrated.itemImages('after-switch'))[0].model).toBe('efficientnet_b0');

      // The old collection is kept, and so is the record of the switch.
      expect((await store.listCollections()).map((c) => c.name)).toContain(OLD_COLLECTION);
      const state = await readMigrationState(path.join(t.dir, 'backups'), 'items');
      expect(state).toMatchObject({
        live: { collection: NEW_COLLECTION, dim: 1280 },
        previous: { collection: OLD_COLLECTION, model: OLD.name, dim: 576 },
      });
      expect(reporter.messages.join('\n')).toMatch(/verified: 5 sampled images each found their own item first/);
    },
  );

  it('carries kinds, item fields and the item centroids of every kind', async () => {
    const form = { item_id: 'FIELDS', item_name: 'Juice', item_group: 'Juice', brand: 'Arla', disabled: 'true' };
    const response = await t.app.inject({
      method: 'POST',
      url: '/ingest',
      ...(await multipart({ ...form, kind: 'photo' }, { bytes: await picture(40) })),
    });
    expect(response.statusCode, response.body).toBe(201);
    const photo = await t.app.inject({
      method: 'POST',
      url: '/items/SKU-2/images',
      ...(await multipart({ kind: 'photo' }, { bytes: await picture(41) })),
    });
    expect(photo.statusCode, photo.body).toBe(201);
    const before = store.collection(OLD_COLLECTION);
    const records = new Map<string, unknown>();
    for await (const { record } of scanPoints(before)) records.set(record.image_id, { ...record, model: NEW.name });
    const itemIds = [...new Set([...records.values()].map((r) => (r as { item_id: string }).item_id))];
    const shape = (centroids: Array<{ item_id: string; kind: string; count: number; vector: Float32Array }>) =>
      centroids
        .map((c) => ({ item_id: c.item_id, kind: c.kind, count: c.count, dim: c.vector.length }))
        .sort((a, b) => a.item_id.localeCompare(b.item_id) || a.kind.localeCompare(b.kind));
    const oldCentroids = shape(await before.centroidsOf(itemIds));
    expect(oldCentroids).toContainEqual({ item_id: 'SKU-2', kind: 'photo', count: 1, dim: OLD.dim });

    await migrate(deps(), options());
    const after = store.collection(NEW_COLLECTION);
    // Every record comes over field by field (only the model changes), and so does every centroid.
    for await (const { record } of scanPoints(after)) expect(record).toEqual(records.get(record.image_id));
    expect(await after.count()).toBe(records.size);
    expect(shape(await after.centroidsOf(itemIds))).toEqual(oldCentroids.map((c) => ({ ...c, dim: NEW.dim })));
    expect((await after.image((await after.itemImages('FIELDS'))[0].image_id))!).toMatchObject({
      item_group: 'Juice',
      brand: 'Arla',
      disabled: true,
      kind: 'photo',
    });
  });

  it('resumes after an interruption without redoing finished work', async () => {
    const controller = new AbortController();
    const reporter = recordingReporter((label, count) => {
      if (label.startsWith('re-embedding') && count >= 4) controller.abort();
    });
    await expect(migrate(deps({ reporter, signal: controller.signal }), options())).rejects.toThrow(
      /interrupted.*run the same command again to resume/,
    );
    expect(await aliasTarget()).toBe(OLD_COLLECTION);
    expect(await store.collection(NEW_COLLECTION).count()).toBe(4);
    expect((await search(t, await picture(5))).results[0].item_id).toBe('SKU-5');

    const summary = await migrate(deps(), options());
    expect(summary).toMatchObject({ carried: ITEMS + 1 - 4, points: ITEMS + 1 });
    expect(await aliasTarget()).toBe(NEW_COLLECTION);
  });

  it('reports points whose original is missing and switches only when told to leave them out', async () => {
    const gone = [
      ...(await t.store.collection('items').itemImages('SKU-4')),
      ...(await t.store.collection('items').itemImages('SKU-7')),
    ];
    for (const record of gone) rmSync(path.join(t.config.imageStorageDir, record.file));
    const reporter = recordingReporter();
    await expect(migrate(deps({ reporter }), options())).rejects.toThrow(
      /2 stored image\(s\) cannot be read.*--allow-missing/,
    );
    for (const record of gone)
      expect(reporter.warnings.join('\n')).toContain(
        `image ${record.image_id} of item "${record.item_id}": ${record.file} file missing`,
      );
    expect(await aliasTarget()).toBe(OLD_COLLECTION);

    const allowed = recordingReporter();
    const summary = await migrate(deps({ reporter: allowed }), options({ allowMissing: true }));
    expect(summary).toMatchObject({ missing: 2, points: ITEMS + 1 - 2 });
    expect(allowed.warnings.join('\n')).toMatch(
      /leaving 2 point\(s\) without a readable original out of items_efficientnet_b0_1280/,
    );
    expect(await aliasTarget()).toBe(NEW_COLLECTION);
    // They are still in the old collection, which is kept.
    expect((await store.collection(OLD_COLLECTION).itemImages('SKU-4')).length).toBe(1);
    // Reported once, not again by the catch-up.
    expect(allowed.warnings.filter((w) => w.includes(gone[0].image_id))).toHaveLength(1);

    // Files restored later: running the migration again takes them in.
    for (const record of gone) {
      mkdirSync(path.dirname(path.join(t.config.imageStorageDir, record.file)), { recursive: true });
      writeFileSync(
        path.join(t.config.imageStorageDir, record.file),
        await picture(record.item_id === 'SKU-4' ? 4 : 7),
      );
    }
    expect(await migrate(deps(), options())).toMatchObject({ caughtUp: 2, missing: 0, points: ITEMS + 1 });
  });

  it(
    'the last catch-up takes in writes that reached the old collection around the switch and forgets deletes ' +
      'made there',
    async () => {
      const files = new ImageFiles(t.config.imageStorageDir);
      const old = store.collection(OLD_COLLECTION);
      const lateId = randomUUID();
      const late = await picture(777);
      // What an API that has not yet noticed the switch does: ingest into, and delete from, the old collection.
      const staleApi = async () => {
        const record = {
          image_id: lateId,
          item_id: 'late',
          item_name: null,
          item_code: null,
          file: files.relativePath('late', lateId, 'jpeg'),
          sha256: sha256Hex(late),
          bytes: late.length,
          model: OLD.name,
          created_at: new Date().toISOString(),
        };
        await files.stage(lateId, late);
        await old.upsert(recordFrom(record), await (await models.fromPath(t.config.modelPath)).embed(late));
        await files.commit(lateId, record.file);
        for (const image of await old.itemImages('SKU-2')) await files.remove(image.file);
        await old.deleteItem('SKU-2');
      };
      const summary = await migrate(deps({ sleep: async () => staleApi() }), options());
      expect(summary).toMatchObject({ caughtUp: 1, missing: 0 });
      const migrated = store.collection(NEW_COLLECTION);
      expect((await migrated.image(lateId))?.model).toBe('efficientnet_b0');
      expect(await migrated.itemImages('SKU-2')).toEqual([]);
      // A second run finds the switch done and has nothing left to catch up.
      expect(await migrate(deps(), options())).toMatchObject({ caughtUp: 0, deleted: 0, points: ITEMS + 1 });
    },
  );

  it(
    'rollback carries changes made after the switch back to the old model, the API follows, drop-old removes ' +
      'what is left',
    async () => {
      await migrate(deps(), options());
      await sleep(1100);
      await ingest(t, 'after-1', await picture(601));
      expect((await t.app.inject({ method: 'DELETE', url: '/items/SKU-3' })).statusCode).toBe(200);

      const summary = await rollback(deps(), { settleMs: 1500 });
      expect(summary).toMatchObject({
        what: 'rollback',
        from: NEW_COLLECTION,
        to: OLD_COLLECTION,
        carried: 1,
        points: ITEMS + 1,
      });
      expect(await aliasTarget()).toBe(OLD_COLLECTION);
      const old = store.collection(OLD_COLLECTION);
      expect((await old.itemImages('after-1'))[0].model).toBe(OLD.name);
      expect(await old.itemImages('SKU-3')).toEqual([]);
      await sleep(1100);
      expect(await ready()).toMatchObject({ collection: OLD_COLLECTION, model: OLD.name, dim: 576 });
      expect((await search(t, await picture(601))).results[0].item_id).toBe('after-1');

      const dropped = await dropOld(deps());
      expect(dropped).toMatchObject({ what: 'drop-old', from: NEW_COLLECTION });
      expect((await store.listCollections()).map((c) => c.name)).toEqual([OLD_COLLECTION]);
      expect(existsSync(migrationStatePath(path.join(t.dir, 'backups'), 'items'))).toBe(false);
      await expect(rollback(deps())).rejects.toThrow(/no migration of items is recorded/);
      expect((await search(t, await picture(6))).results[0].item_id).toBe('SKU-6');
    },
  );

  it('drop-old deletes the old collection after a migration; rollback then has nothing to go back to', async () => {
    await migrate(deps(), options());
    await dropOld(deps());
    expect((await store.listCollections()).map((c) => c.name)).toEqual([NEW_COLLECTION]);
    await expect(rollback(deps())).rejects.toThrow(OpsError);
    await sleep(1100);
    expect((await search(t, await picture(8))).results[0].item_id).toBe('SKU-8');
  });

  it(
    'refuses a rollback when the old model is not beside MODEL_PATH, and a second migration while an old ' +
      'collection is kept',
    async () => {
      await migrate(deps(), options());
      const other = writeTestModel({
        dir: path.join(t.dir, 'elsewhere'),
        name: 'third_model',
        dim: 64,
        seed: 3,
      }).onnxPath;
      await expect(migrate(deps(), options({ toModel: other }))).rejects.toThrow(
        /items_mobilenet_v3_small_576, left by the last migration for rollback, still exists/,
      );
      rmSync(t.config.modelPath);
      await expect(
        rollback(deps({ models: registryFor(path.join(t.dir, 'models', 'efficientnet_b0.onnx')) })),
      ).rejects.toThrow(/its model mobilenet_v3_small must sit beside MODEL_PATH/);
      expect(await aliasTarget()).toBe(NEW_COLLECTION);
    },
  );

  it(
    'takes the EBS snapshot first on EC2 and changes nothing when it fails; copies a new model from elsewhere ' +
      'beside MODEL_PATH and says which MODEL_PATH to set',
    async () => {
      // The new model only outside the directory of MODEL_PATH, where the API would not find it.
      const elsewhere = writeTestModel({ dir: path.join(t.dir, 'elsewhere'), ...NEW }).onnxPath;
      rmSync(newModel);
      const reporter = recordingReporter();
      const failing = deps({
        reporter,
        ec2: {
          detect: async () => ({ instanceId: 'i-0abc', region: 'eu-west-1' }),
          snapshot: async () => {
            throw new Error('not allowed to create a snapshot of vol-1 (UnauthorizedOperation)');
          },
        },
      });
      await expect(migrate(failing, options({ toModel: elsewhere }))).rejects.toThrow(
        /the EBS snapshot before the migration failed \(not allowed .*\); nothing was changed.*--skip-ebs-snapshot/,
      );
      expect((await store.listCollections()).map((c) => c.name)).toEqual([OLD_COLLECTION]);
      expect(existsSync(newModel)).toBe(false);

      // Off EC2 it says so and goes on; --skip-ebs-snapshot does not even ask.
      const offEc2 = recordingReporter();
      let asked = 0;
      const detect = async () => (asked++, undefined);
      await migrate(
        deps({ reporter: offEc2, ec2: { detect, snapshot: async () => 'never' } }),
        options({ toModel: elsewhere, skipEbsSnapshot: true }),
      );
      expect(asked).toBe(0);
      expect(await aliasTarget()).toBe(NEW_COLLECTION);
      // The model and its sidecar were copied where the API loads them; the API serves the new collection.
      expect(readFileSync(newModel)).toEqual(readFileSync(elsewhere));
      expect(existsSync(newModel.replace(/\.onnx$/, '.json'))).toBe(true);
      expect(offEc2.messages.join('\n')).toContain(`set MODEL_PATH=${newModel}`);
      await sleep(1100);
      expect(await ready()).toMatchObject({ collection: NEW_COLLECTION, model: 'efficientnet_b0' });
      expect((await search(t, await picture(3))).results[0].item_id).toBe('SKU-3');
      await dropOld(deps());
      const back = await migrate(
        deps({ reporter: offEc2, ec2: { detect, snapshot: async () => 'never' } }),
        options({ toModel: t.config.modelPath }),
      );
      expect(asked).toBe(1);
      expect(back.ebsSnapshot).toBeUndefined();
      expect(offEc2.messages.join('\n')).toMatch(/no EBS snapshot: instance metadata did not answer/);
    },
  );

  it('refuses a model whose name beside MODEL_PATH or in the live collection has other weights', async () => {
    // Another export of efficientnet_b0 (other weights) elsewhere, while the one beside MODEL_PATH stays.
    const other = writeTestModel({ dir: path.join(t.dir, 'elsewhere'), ...NEW, seed: 77 }).onnxPath;
    await expect(migrate(deps(), options({ toModel: other }))).rejects.toThrow(
      /efficientnet_b0\.onnx exists with other weights \(sha256 [0-9a-f]{64}\) .* Nothing was changed/,
    );
    expect((await store.listCollections()).map((c) => c.name)).toEqual([OLD_COLLECTION]);

    // Migrated to one export, then asked to go to the other export of the same name and width.
    await migrate(deps(), options());
    expect((await collectionOf(NEW_COLLECTION))?.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    await dropOld(deps());
    await expect(migrate(deps(), options({ toModel: other }))).rejects.toThrow(
      /holds vectors of efficientnet_b0 with other weights .* nothing was changed\. Export the new model under another name/,
    );
    expect(await aliasTarget()).toBe(NEW_COLLECTION);
  });

  it('converts a legacy plain collection named like the alias, keeping a copy for rollback', async () => {
    // Make "items" a plain collection holding the same points (as data from before aliases would be).
    const points = [];
    for await (const point of scanPoints(store.collection(OLD_COLLECTION), { withVectors: true }))
      points.push(point as { record: typeof point.record; vector: Float32Array });
    await store.deleteCollection(OLD_COLLECTION);
    if (double) {
      // Made by another tool: no model recorded in the collection.
      await (store as QdrantStore).client.createCollection('items', { vectors: { size: 576, distance: 'Cosine' } });
      await (store as QdrantStore).client.createPayloadIndex('items', {
        field_name: 'item_id',
        field_schema: 'keyword',
        wait: true,
      });
    } else {
      await store.createCollection('items', 576, OLD.name);
    }
    await store.collection('items').upsertMany(points);
    expect(await store.listAliases()).toEqual({});
    await sleep(1100);
    expect((await search(t, await picture(9))).results[0].item_id).toBe('SKU-9');

    if (double)
      await expect(migrate(deps(), options())).rejects.toThrow(
        /items is a plain collection that records no model; pass --legacy-model NAME/,
      );
    const reporter = recordingReporter();
    const summary = await migrate(deps({ reporter }), options({ legacyModel: OLD.name }));
    expect(summary).toMatchObject({ from: 'items', to: NEW_COLLECTION, points: ITEMS + 1 });
    expect(reporter.warnings.join('\n')).toMatch(/replacing the plain collection items by an alias/);
    expect(await store.listAliases()).toEqual({ items: NEW_COLLECTION });
    const copy = (await store.listCollections()).find((c) => c.name === OLD_COLLECTION);
    expect(copy).toMatchObject({ dim: 576, model: OLD.name, points: ITEMS + 1 });
    await sleep(1100);
    expect(await ready()).toMatchObject({ collection: NEW_COLLECTION, dim: 1280 });

    await rollback(deps(), { settleMs: 1500 });
    expect(await store.listAliases()).toEqual({ items: OLD_COLLECTION });
    await sleep(1100);
    expect(await ready()).toMatchObject({ collection: OLD_COLLECTION, model: OLD.name, dim: 576 });
    expect((await search(t, await picture(10))).results[0].item_id).toBe('SKU-10');
  });
});

describe('migrate: no store to migrate', () => {
  it('says so when there is no collection at all', async () => {
    const dir = path.join(process.env.TMPDIR ?? '/tmp', `migrate-empty-${randomUUID()}`);
    mkdirSync(dir, { recursive: true });
    const store = openEmbeddedStore({ dataDir: dir });
    const model = writeTestModel({ dir, ...NEW }).onnxPath;
    const models = registryFor(model);
    try {
      await expect(
        migrate(
          {
            store,
            files: new ImageFiles(path.join(dir, 'images')),
            models,
            alias: 'items',
            modelPath: model,
            backupDir: dir,
            reporter: recordingReporter(),
          },
          { toModel: model },
        ),
      ).rejects.toThrow(/there is no collection or alias items .* nothing to migrate/);
    } finally {
      await models.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
