// A backup carries everything the matching needs, on both stores: image kinds, item fields (group, brand,
// disabled) and the item centroids come back from a restore exactly as they were, after the catalog was
// emptied in between.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../../scripts/backup.js';
import { runRestore } from '../../scripts/restore.js';
import type { VectorStore } from '../../service/src/store/port.js';
import { multipart, type TestApp } from '../support/app.js';
import type { QdrantDouble } from '../support/qdrant-double.js';
import { backupDepsOf, picture, restoreDepsOf, STORES } from './helpers.js';

const ITEMS = ['JUICE-1', 'MILK-1', 'MILK-2'];

describe.each(STORES)('backup and restore carry kinds, item fields and centroids on the $kind store', (setup) => {
  let t: TestApp;
  let double: QdrantDouble | undefined;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ t, double, close } = await setup.start());
    const post = async (url: string, fields: Record<string, string>, seed: number) => {
      const response = await t.app.inject({
        method: 'POST',
        url,
        ...(await multipart(fields, { bytes: await picture(seed) })),
      });
      expect(response.statusCode, response.body).toBe(201);
    };
    await post('/ingest', { item_id: 'JUICE-1', item_group: 'Juice', brand: 'Tropicana' }, 1);
    await post('/items/JUICE-1/images', { kind: 'photo' }, 2);
    await post('/items/JUICE-1/images', { kind: 'photo' }, 3);
    await post('/ingest', { item_id: 'MILK-1', item_group: 'Milk', brand: 'Arla', disabled: 'true' }, 4);
    await post('/ingest', { item_id: 'MILK-2', item_group: 'Milk', kind: 'photo' }, 5);
  });
  afterEach(() => close());

  const snapshot = async (store: VectorStore) => {
    const collection = store.collection('items');
    const images = await Promise.all(ITEMS.map((item) => collection.itemImages(item)));
    const centroids = (await collection.centroidsOf(ITEMS))
      .map((c) => ({ item_id: c.item_id, kind: c.kind, count: c.count, vector: Array.from(c.vector) }))
      .sort((a, b) => `${a.item_id} ${a.kind}`.localeCompare(`${b.item_id} ${b.kind}`));
    return { images, centroids };
  };

  it('everything comes back as it was', async () => {
    const before = await snapshot(t.store);
    expect(before.centroids.map((c) => [c.item_id, c.kind, c.count])).toEqual([
      ['JUICE-1', 'catalog', 1],
      ['JUICE-1', 'photo', 2],
      ['MILK-1', 'catalog', 1],
      ['MILK-2', 'photo', 1],
    ]);
    expect(before.images[1][0]).toMatchObject({ item_group: 'Milk', brand: 'Arla', disabled: true });
    const backupDir = path.join(t.dir, 'backups');
    await runBackup(backupDepsOf(t, backupDir));
    expect((await t.app.inject({ method: 'DELETE', url: '/items' })).statusCode).toBe(200);
    expect(await t.store.collection('items').centroidsOf(ITEMS)).toEqual([]);
    await t.app.close();
    await t.store.close();
    const restore = restoreDepsOf(t, setup.kind, double, backupDir);
    await runRestore(restore, {});
    const store = restore.openStore();
    try {
      const after = await snapshot(store);
      expect(after.images).toEqual(before.images);
      expect(after.centroids.map(({ vector: _, ...rest }) => rest)).toEqual(
        before.centroids.map(({ vector: _, ...rest }) => rest),
      );
      after.centroids.forEach((c, i) =>
        c.vector.forEach((x, j) => expect(x).toBeCloseTo(before.centroids[i].vector[j], 5)),
      );
    } finally {
      await store.close();
    }
  });
});
