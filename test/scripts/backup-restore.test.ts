// Backup, restore and the consistency check end to end: a real API ingests real images into the
// embedded store or into Qdrant (the strict double), then the operations functions run against it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listBackups, readManifest } from '../../scripts/backup-dir.js';
import { runBackup, type BackupDeps } from '../../scripts/backup.js';
import { checkConsistency } from '../../scripts/consistency.js';
import {
  MIGRATION_FORMAT,
  readMigrationState,
  removeMigrationState,
  writeMigrationState,
  type MigrationState,
} from '../../scripts/migrate/state.js';
import { QdrantSnapshots } from '../../service/src/store/qdrant/snapshots.js';
import { runRestore, type RestoreDeps } from '../../scripts/restore.js';
import { ImageFiles } from '../../service/src/catalog/image-files.js';
import { createQdrantStore } from '../../service/src/store/qdrant/store.js';
import type { TestApp } from '../support/app.js';
import type { QdrantDouble } from '../support/qdrant-double.js';
import {
  addImage,
  backupDepsOf,
  ingest,
  picture,
  recordingReporter,
  restoreDepsOf,
  search,
  STORES,
} from './helpers.js';

describe.each(STORES)('backup and restore on the $kind store', (setup) => {
  let t: TestApp;
  let double: QdrantDouble | undefined;
  let close: () => Promise<void>;
  let backupDir: string;
  let clock: number;

  beforeEach(async () => {
    ({ t, double, close } = await setup.start());
    backupDir = path.join(t.dir, 'backups');
    clock = Date.parse('2026-03-14T02:30:00.000Z');
    for (let i = 1; i <= 5; i++) await ingest(t, `SKU-${i}`, await picture(i));
    await addImage(t, 'SKU-1', await picture(101));
  });
  afterEach(() => close());

  const deps = (overrides: Partial<BackupDeps> = {}): BackupDeps =>
    backupDepsOf(t, backupDir, { now: () => new Date((clock += 60_000)), ...overrides });

  const restoreDeps = (overrides: Partial<RestoreDeps> = {}): RestoreDeps =>
    restoreDepsOf(t, setup.kind, double, backupDir, overrides);

  /** Stops the API: closes the app and its store (an embedded restore needs the database unused). */
  const stopApi = async () => {
    await t.app.close();
    await t.store.close();
  };

  it(
    'writes one complete backup: database or snapshots, every image with its checksum, a manifest, a ' + 'summary',
    async () => {
      const summary = await runBackup(deps());
      expect(summary).toMatchObject({
        what: 'backup',
        store: setup.kind,
        points: 6,
        images: 6,
        copied: 6,
        linked: 0,
        vanished: 0,
        kept: 1,
        deleted: 0,
      });
      expect(summary.size).toBeGreaterThan(0);
      expect(summary.duration).toBeGreaterThanOrEqual(0);
      const [ref] = await listBackups(backupDir);
      expect(ref.id).toBe(summary.id);
      const manifest = await readManifest(ref);
      expect(manifest.collections.map((c) => [c.name, c.points])).toEqual([['items_test_model_64', 6]]);
      expect(manifest.aliases).toEqual({ items: 'items_test_model_64' });
      const storeFiles = manifest.database ? [manifest.database] : manifest.snapshots!;
      expect(storeFiles).toHaveLength(1);
      for (const entry of storeFiles) expect(statSync(path.join(ref.dir, entry.file)).size).toBe(entry.size);
      if (double) {
        // The snapshot is the one Qdrant made, checked against the checksum Qdrant reported.
        const inQdrant = await new QdrantSnapshots(createQdrantStore({ url: double.url }), double.url).list(
          'items_test_model_64',
        );
        expect(inQdrant.map((s) => s.name)).toEqual([manifest.snapshots![0].name]);
        expect(inQdrant[0].checksum).toBe(manifest.snapshots![0].sha256);
      }
      const points = await t.store.collection('items').scroll({ limit: 100 });
      expect(manifest.images.files.map((f) => [f.path, f.sha256]).sort()).toEqual(
        points.points.map((p) => [p.record.file, p.record.sha256]).sort(),
      );
      for (const file of manifest.images.files) {
        expect(readFileSync(path.join(ref.dir, 'images', file.path))).toEqual(
          readFileSync(path.join(t.config.imageStorageDir, file.path)),
        );
      }
      expect(readdirSync(backupDir).filter((entry) => entry.startsWith('.partial'))).toEqual([]);
    },
  );

  it('links unchanged images from the previous backup and keeps only the newest N (also inside Qdrant)', async () => {
    const first = await runBackup(deps({ keep: 2 }));
    await ingest(t, 'SKU-new', await picture(50));
    const second = await runBackup(deps({ keep: 2 }));
    expect(second).toMatchObject({ images: 7, linked: 6, copied: 1, kept: 2, deleted: 0 });
    const [latest, previous] = await listBackups(backupDir);
    const file = (await readManifest(previous)).images.files[0].path;
    expect(statSync(path.join(latest.dir, 'images', file)).ino).toBe(
      statSync(path.join(previous.dir, 'images', file)).ino,
    );

    const third = await runBackup(deps({ keep: 2 }));
    expect(third).toMatchObject({ kept: 2, deleted: 1 });
    expect((await listBackups(backupDir)).map((b) => b.id)).toEqual([third.id, second.id]);
    expect(existsSync(path.join(backupDir, first.id))).toBe(false);
    // The images of the kept backups are intact although the first one, which they link to, is gone.
    const kept = await readManifest((await listBackups(backupDir))[1]);
    expect(readFileSync(path.join(backupDir, second.id, 'images', kept.images.files[0].path)).length).toBe(
      kept.images.files[0].size,
    );
    if (double) {
      const names = (
        await new QdrantSnapshots(createQdrantStore({ url: double.url }), double.url).list('items_test_model_64')
      )
        .map((s) => s.name)
        .sort();
      const expected = await Promise.all(
        [third.id, second.id].map(
          async (id) => (await readManifest({ id, dir: path.join(backupDir, id) })).snapshots![0].name,
        ),
      );
      expect(names).toEqual(expected.sort());
    }
  });

  it(
    'a failed run leaves no partial backup (and no snapshot inside Qdrant); leftovers of a crash are cleaned ' +
      'by the next run',
    async () => {
      const crashing = recordingReporter((label) => {
        if (label === 'images') throw new Error('disk gone');
      });
      await expect(runBackup(deps({ reporter: crashing }))).rejects.toThrow('disk gone');
      expect(readdirSync(backupDir)).toEqual([]);
      if (double)
        expect(
          await new QdrantSnapshots(createQdrantStore({ url: double.url }), double.url).list('items_test_model_64'),
        ).toEqual([]);

      mkdirSync(path.join(backupDir, '.partial-20260101T000000000Z', 'images'), { recursive: true });
      const reporter = recordingReporter();
      await runBackup(deps({ reporter }));
      expect(reporter.messages).toContain('removed .partial-20260101T000000000Z, left by an interrupted run');
      expect(readdirSync(backupDir).filter((entry) => !entry.startsWith('2026'))).toEqual([]);
    },
  );

  it(
    'a missing image is reported and its point kept (restore then reports it); an item deleted during the ' +
      'backup leaves it',
    async () => {
      const [lost] = await t.store.collection('items').itemImages('SKU-4');
      rmSync(path.join(t.config.imageStorageDir, lost.file));
      const [doomed] = await t.store.collection('items').itemImages('SKU-5');
      const reporter = recordingReporter();
      const progress = reporter.progress.bind(reporter);
      reporter.progress = (label, total) => {
        // Between listing and copying the images, SKU-5 is deleted, file and point. (The embedded store
        // writes synchronously; Qdrant would answer later, so only the embedded run does this.)
        if (label === 'images' && setup.kind === 'embedded') {
          rmSync(path.join(t.config.imageStorageDir, doomed.file));
          void t.store.collection('items').deleteImages([doomed.image_id]);
        }
        return progress(label, total);
      };
      const summary = await runBackup(deps({ reporter }));
      const manifest = await readManifest({ id: summary.id, dir: summary.dir });
      expect(manifest.images.missing).toEqual([lost.file]);
      expect(reporter.warnings.join('\n')).toContain(`image ${lost.file} is missing although its point exists`);
      if (setup.kind === 'embedded') {
        expect(summary).toMatchObject({ points: 5, images: 4, missing: 1, vanished: 1 });
        expect(manifest.images.vanished).toEqual([doomed.file]);
        expect(manifest.collections[0].points).toBe(5);
        await stopApi();
        const restored = await runRestore(restoreDeps());
        expect(restored.check).toMatchObject({ points: 5, pointsWithoutFile: 1, filesWithoutPoint: 0 });
      } else {
        expect(summary).toMatchObject({ points: 6, images: 5, missing: 1, vanished: 0 });
      }
    },
  );

  it('restores vectors and images as they were, and the check reports what came later', async () => {
    const backup = await runBackup(deps());
    // After the backup: an item deleted, an image file lost, a new item ingested.
    expect((await t.app.inject({ method: 'DELETE', url: '/items/SKU-2' })).statusCode).toBe(200);
    const [lost] = await t.store.collection('items').itemImages('SKU-3');
    rmSync(path.join(t.config.imageStorageDir, lost.file));
    await ingest(t, 'SKU-later', await picture(60));

    if (setup.kind === 'embedded') {
      // The API still has the database open: the restore refuses and changes nothing.
      await expect(runRestore(restoreDeps())).rejects.toThrow(/is in use .* stop the API first/);
      expect((await t.store.collection('items').itemImages('SKU-2')).length).toBe(0);
      await stopApi();
    }
    const reporter = recordingReporter();
    const summary = await runRestore(restoreDeps({ reporter }));
    expect(summary).toMatchObject({
      what: 'restore',
      backup: backup.id,
      collections: ['items_test_model_64'],
      images: { restored: 2, unchanged: 4 },
      check: {
        collection: 'items_test_model_64',
        points: 6,
        files: 7,
        pointsWithoutFile: 0,
        filesWithoutPoint: 1,
        ok: false,
      },
    });
    expect(reporter.warnings.join('\n')).toMatch(/belongs to no point[\s\S]*ingested after this backup/);

    const store = restoreDeps().openStore();
    try {
      const live = store.collection('items');
      expect((await live.itemImages('SKU-2')).length).toBe(1);
      expect((await live.itemImages('SKU-later')).length).toBe(0);
      expect(existsSync(path.join(t.config.imageStorageDir, lost.file))).toBe(true);
      // Searching the restored collection finds an item by its own picture.
      const [hit] = await live.searchItems((await live.scroll({ limit: 1, withVectors: true })).points[0].vector!, 1);
      expect(hit.score).toBeCloseTo(1, 4);
      if (setup.kind === 'embedded')
        expect(summary.previous && existsSync(path.join(summary.previous, 'store.sqlite'))).toBe(true);
    } finally {
      await store.close();
    }
    if (setup.kind === 'qdrant') expect((await search(t, await picture(4))).results[0].item_id).toBe('SKU-4');
  });

  it('refuses a damaged backup before touching anything', async () => {
    const backup = await runBackup(deps());
    const manifest = await readManifest({ id: backup.id, dir: backup.dir });
    const victim = path.join(backup.dir, 'images', manifest.images.files[0].path);
    rmSync(victim); // a hard link: replace the file instead of writing through to the live image
    writeFileSync(victim, 'not the image');
    await ingest(t, 'SKU-after', await picture(70));
    if (setup.kind === 'embedded') await stopApi();
    await expect(runRestore(restoreDeps())).rejects.toThrow(
      /backup is damaged: 1 image file\(s\) do not match its manifest.*nothing was restored/,
    );
    const store = restoreDeps().openStore();
    try {
      expect((await store.collection('items').itemImages('SKU-after')).length).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('restore names the backup to use and refuses an unknown one', async () => {
    const first = await runBackup(deps());
    await ingest(t, 'SKU-between', await picture(80));
    await runBackup(deps());
    if (setup.kind === 'embedded') await stopApi();
    await expect(runRestore(restoreDeps(), { backup: 'nope' })).rejects.toThrow(/no backup "nope" in .*newest: /);
    const summary = await runRestore(restoreDeps(), { backup: first.id });
    expect(summary).toMatchObject({ backup: first.id, check: { points: 6, filesWithoutPoint: 1 } });
  });

  it(
    'carries the migration record along: restore puts back the one of the backup, or removes a newer ' + 'one',
    async () => {
      const record: MigrationState = {
        format: MIGRATION_FORMAT,
        alias: 'items',
        live: { collection: 'items_test_model_64', model: 'test_model', dim: 64 },
        previous: { collection: 'items_old_32', model: 'old', dim: 32 },
        switchedAt: '2026-03-01T00:00:00.000Z',
        shared: ['a', 'b'],
      };
      await writeMigrationState(backupDir, record);
      const withRecord = await runBackup(deps());
      await removeMigrationState(backupDir, 'items');
      const without = await runBackup(deps());
      if (setup.kind === 'embedded') await stopApi();
      await runRestore(restoreDeps(), { backup: withRecord.id });
      expect(await readMigrationState(backupDir, 'items')).toEqual(record);
      await runRestore(restoreDeps(), { backup: without.id });
      expect(await readMigrationState(backupDir, 'items')).toBeUndefined();
    },
  );

  it('check: consistent after ingests; reports points without files and files without points', async () => {
    const files = new ImageFiles(t.config.imageStorageDir);
    const clean = await checkConsistency({
      store: t.store,
      files,
      alias: 'items',
      verifyHashes: true,
      reporter: recordingReporter(),
    });
    expect(clean).toMatchObject({
      collection: 'items_test_model_64',
      points: 6,
      files: 6,
      ok: true,
      pointsWithoutFile: [],
      filesWithoutPoint: [],
      hashMismatches: [],
    });

    const [gone] = await t.store.collection('items').itemImages('SKU-4');
    rmSync(path.join(t.config.imageStorageDir, gone.file));
    const stray = 'ab/abababab/00000000-0000-4000-8000-000000000000.jpg';
    mkdirSync(path.join(t.config.imageStorageDir, 'ab', 'abababab'), { recursive: true });
    writeFileSync(path.join(t.config.imageStorageDir, stray), 'x');
    const [changed] = await t.store.collection('items').itemImages('SKU-5');
    writeFileSync(path.join(t.config.imageStorageDir, changed.file), 'tampered');
    const report = await checkConsistency({
      store: t.store,
      files,
      alias: 'items',
      verifyHashes: true,
      reporter: recordingReporter(),
    });
    expect(report).toMatchObject({
      ok: false,
      points: 6,
      files: 6,
      pointsWithoutFile: [{ image_id: gone.image_id, item_id: 'SKU-4', file: gone.file }],
      filesWithoutPoint: [stray],
      hashMismatches: [changed.file],
    });
  });
});
