// `ops restore`: brings back the vectors and the images of one backup (the newest by default), then
// runs the consistency check. The whole backup is verified against its manifest before anything live
// is touched. The store's part is the adapter's own (StoreBackup.restore): the embedded store replaces its
// database offline (the API must be stopped; the replaced one is kept aside), Qdrant recovers each
// collection from its snapshot into the running stack and recreates the aliases.
import path from 'node:path';
import type { ImageFiles } from '../service/src/catalog/image-files.js';
import { fileStat, insideRoot, sha256File } from '../service/src/lib/files.js';
import type { StoreBackup, VectorStore } from '../service/src/store/port.js';
import { findBackup, readManifest, type BackupManifest, type BackupRef } from './backup-dir.js';
import { formatBytes, OpsError, type Reporter } from './cli.js';
import { checkConsistency, describeConsistency, type ConsistencyReport } from './consistency.js';
import { restoreImages, verifyImages } from './image-backup.js';
import { removeMigrationState, writeMigrationState } from './migrate/state.js';
import { scanPoints } from './points.js';

export interface RestoreDeps {
  kind: 'embedded' | 'qdrant';
  /** Opens the store. For the embedded store this happens only after the database was replaced. */
  openStore: () => VectorStore;
  /** The store's backup capability; for Qdrant it needs the open store. */
  backupOf: (store: VectorStore | undefined) => StoreBackup;
  files: ImageFiles;
  alias: string;
  backupDir: string;
  reporter: Reporter;
}

export interface RestoreSummary {
  what: 'restore';
  store: 'embedded' | 'qdrant';
  backup: string;
  collections: string[];
  images: { restored: number; unchanged: number };
  check: Pick<ConsistencyReport, 'collection' | 'points' | 'files' | 'ok'> & {
    pointsWithoutFile: number;
    filesWithoutPoint: number;
  };
  /** Embedded store: where the replaced database was moved. */
  previous?: string;
  duration: number;
}

async function verifyBackup(ref: BackupRef, manifest: BackupManifest, reporter: Reporter): Promise<void> {
  const storeFiles = manifest.database ? [manifest.database] : (manifest.snapshots ?? []);
  if (storeFiles.length === 0) throw new OpsError(`backup ${ref.id} holds no database and no snapshots`);
  for (const entry of storeFiles) {
    const file = insideRoot(ref.dir, entry.file);
    const present = await fileStat(file);
    const digest = present ? await sha256File(file) : undefined;
    if (!digest || digest.size !== entry.size || digest.sha256 !== entry.sha256) {
      throw new OpsError(
        `the backup ${ref.id} is damaged: ${entry.file} ` +
          `${digest ? 'does not match its checksum' : 'is missing'}; nothing was restored`,
      );
    }
  }
  await verifyImages(path.join(ref.dir, 'images'), manifest.images.files, reporter);
}

export async function runRestore(deps: RestoreDeps, options: { backup?: string } = {}): Promise<RestoreSummary> {
  const { reporter, alias } = deps;
  const clock = performance.now();
  const ref = await findBackup(deps.backupDir, options.backup);
  const manifest = await readManifest(ref);
  reporter.info(
    `restoring backup ${ref.id} (taken ${manifest.createdAt}; ` +
      `${manifest.collections.map((c) => `${c.name}: ${c.points} points`).join(', ')})`,
  );
  if (manifest.store !== deps.kind) {
    throw new OpsError(
      `backup ${ref.id} holds a ${manifest.store} store, but this deployment uses the ${deps.kind} store ` +
        `(QDRANT_URL ${deps.kind === 'qdrant' ? 'set' : 'unset'})`,
    );
  }
  // The embedded store is replaced before it is opened; Qdrant is restored through the open store.
  let store = deps.kind === 'qdrant' ? deps.openStore() : undefined;
  const backup = deps.backupOf(store);
  let previous: string | undefined;
  try {
    await backup.assertRestorable(); // before the long verification
    await verifyBackup(ref, manifest, reporter);
    reporter.info('backup verified against its manifest');
    const storeFiles = manifest.database ? [manifest.database] : (manifest.snapshots ?? []);
    ({ previous } = await backup.restore(ref.dir, storeFiles, manifest.aliases));
    reporter.info(
      `${deps.kind} store restored (${formatBytes(storeFiles.reduce((sum, f) => sum + f.size, 0))})` +
        (previous ? `; the replaced data is kept in ${previous}` : ''),
    );
  } catch (error) {
    await store?.close();
    throw error;
  }
  store ??= deps.openStore();
  if (deps.kind === 'qdrant') {
    const restored = new Set(manifest.collections.map((c) => c.name));
    const others = (await store.listCollections()).filter((c) => !restored.has(c.name)).map((c) => c.name);
    if (others.length > 0) reporter.info(`left alone (not in the backup): ${others.join(', ')}`);
  }
  try {
    for (const collection of manifest.collections) {
      reporter.info(`preparing the search index of ${collection.name}`);
      await store.prepareIndex(collection.name);
    }
    if (manifest.migration) await writeMigrationState(deps.backupDir, manifest.migration);
    else await removeMigrationState(deps.backupDir, alias);

    // Only the images of points that exist now: a Qdrant backup can hold a few files ingested after its snapshot.
    const named = new Set<string>();
    for (const collection of manifest.collections) {
      for await (const { record } of scanPoints(store.collection(collection.name))) named.add(record.file);
    }
    const images = await restoreImages({
      backupRoot: path.join(ref.dir, 'images'),
      targetRoot: deps.files.root,
      entries: manifest.images.files.filter((entry) => named.has(entry.path)),
      reporter,
    });
    reporter.info(`images: ${images.restored} restored, ${images.unchanged} already in place`);

    const report = await checkConsistency({ store, files: deps.files, alias, reporter });
    const verdict = describeConsistency(report, reporter);
    if (report.ok) reporter.info(verdict);
    else {
      reporter.warn(verdict);
      if (report.filesWithoutPoint.length > 0) {
        reporter.warn(
          'files without a point are usually images ingested after this backup was taken; re-ingest their ' +
            'items or remove the files',
        );
      }
    }
    return {
      what: 'restore',
      store: deps.kind,
      backup: ref.id,
      collections: manifest.collections.map((c) => c.name),
      images,
      check: {
        collection: report.collection,
        points: report.points,
        files: report.files,
        ok: report.ok,
        pointsWithoutFile: report.pointsWithoutFile.length,
        filesWithoutPoint: report.filesWithoutPoint.length,
      },
      ...(previous ? { previous } : {}),
      duration: Number(((performance.now() - clock) / 1000).toFixed(3)),
    };
  } finally {
    await store.close();
  }
}
