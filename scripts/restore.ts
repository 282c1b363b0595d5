// `ops restore`: brings back the vectors and the images of one backup (the newest by default), then
// runs the consistency check. The whole backup is verified against its manifest before anything live
// is touched.
//
// Embedded store: offline. The database file is replaced, which is only safe while nothing has it
// open, so the API must be stopped; a process holding the database is detected through SQLite's own
// locks and the restore refuses. The replaced database (and its index files) is moved to
// DATA_DIR/pre-restore-<time>/, never deleted.
//
// Qdrant: online, into the running stack. Each collection is recovered from its uploaded snapshot
// with priority "snapshot" (the snapshot's content wins), then the recorded aliases are recreated.
// Collections that are not in the backup are left alone.
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ImageFiles } from '../service/src/catalog/image-files.js';
import type { VectorStore } from '../service/src/store/port.js';
import { findBackup, readManifest, type BackupManifest, type BackupRef } from './backup-dir.js';
import { formatBytes, OpsError, type Reporter } from './cli.js';
import { checkConsistency, describeConsistency, type ConsistencyReport } from './consistency.js';
import { copyFileAtomic, fileStat, fsyncDir, insideRoot, pathExists, sha256File } from './files.js';
import { restoreImages, verifyImages } from './image-backup.js';
import { removeMigrationState, writeMigrationState } from './migration-state.js';
import { scanPoints } from './points.js';
import type { QdrantSnapshots } from './qdrant-snapshots.js';

export interface RestoreDeps {
  kind: 'embedded' | 'qdrant';
  /** Opens the store. For the embedded store this happens only after the database was replaced. */
  openStore: () => VectorStore;
  files: ImageFiles;
  alias: string;
  backupDir: string;
  /** Embedded store: DATA_DIR. */
  dataDir: string;
  reporter: Reporter;
  snapshots?: QdrantSnapshots;
  now?: () => Date;
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

/** Throws when another connection (the API, another command) has the database open. */
function assertDatabaseUnused(file: string): void {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 0 });
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_CANTOPEN') return; // no database yet: nothing to protect
    throw error;
  }
  try {
    // In WAL mode every open connection holds a shared lock, so an exclusive transaction fails at once.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (error) {
    if (/SQLITE_BUSY|SQLITE_LOCKED/.test((error as { code?: string }).code ?? '')) {
      throw new OpsError(
        `the embedded database ${file} is in use (the API or another command has it open); stop the API first ` +
          `(Ctrl-C, systemctl stop, or docker compose stop api), then run the restore again`,
      );
    }
    throw error;
  } finally {
    db.close(); // the last connection: SQLite folds the WAL into the file and removes it
  }
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
    `restoring backup ${ref.id} (taken ${manifest.created_at}; ` +
      `${manifest.collections.map((c) => `${c.name}: ${c.points} points`).join(', ')})`,
  );
  if (manifest.store !== deps.kind) {
    throw new OpsError(
      `backup ${ref.id} holds a ${manifest.store} store, but this deployment uses the ${deps.kind} store ` +
        `(QDRANT_URL ${deps.kind === 'qdrant' ? 'set' : 'unset'})`,
    );
  }
  if (deps.kind === 'embedded') assertDatabaseUnused(liveDatabase(deps, manifest)); // before the long verification
  await verifyBackup(ref, manifest, reporter);
  reporter.info('backup verified against its manifest');

  let previous: string | undefined;
  let store: VectorStore;
  if (deps.kind === 'embedded') {
    previous = await replaceDatabase(deps, ref, manifest);
    store = deps.openStore();
  } else {
    store = deps.openStore();
    await recoverQdrant(deps, store, ref, manifest);
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

const liveDatabase = (deps: RestoreDeps, manifest: BackupManifest) =>
  path.join(deps.dataDir, path.basename(manifest.database?.file ?? 'store.sqlite'));

/** Puts the backup's database in place of the current one; returns where the current one went. */
async function replaceDatabase(
  deps: RestoreDeps,
  ref: BackupRef,
  manifest: BackupManifest,
): Promise<string | undefined> {
  const { dataDir, reporter } = deps;
  const entry = manifest.database!;
  const name = path.basename(entry.file);
  const live = liveDatabase(deps, manifest);
  assertDatabaseUnused(live);
  await mkdir(dataDir, { recursive: true });
  // Staged beside the live file (same filesystem) and verified on the way, so the final step is a rename.
  const staged = path.join(dataDir, `${name}.restoring`);
  await copyFileAtomic(insideRoot(ref.dir, entry.file), staged, {
    size: entry.size,
    sha256: entry.sha256,
    what: entry.file,
  });

  // The old -wal must never meet the new file (SQLite would apply it), and the index files belong to the old data.
  const stamp = (deps.now ?? (() => new Date()))().toISOString().replace(/[-:.]/g, '');
  const aside = path.join(dataDir, `pre-restore-${stamp}`);
  let moved = false;
  for (const part of [name, `${name}-wal`, `${name}-shm`, 'index']) {
    if (!(await pathExists(path.join(dataDir, part)))) continue;
    await mkdir(aside, { recursive: true });
    await rename(path.join(dataDir, part), path.join(aside, part));
    moved = true;
  }
  await rename(staged, live);
  await fsyncDir(dataDir);
  reporter.info(
    `database ${live} restored (${formatBytes(entry.size)})${moved ? `; the replaced one is kept in ${aside}` : ''}`,
  );
  return moved ? aside : undefined;
}

async function recoverQdrant(
  deps: RestoreDeps,
  store: VectorStore,
  ref: BackupRef,
  manifest: BackupManifest,
): Promise<void> {
  const { reporter, snapshots } = deps;
  if (!snapshots) throw new Error('recoverQdrant needs QdrantSnapshots');
  const progress = reporter.progress('recovering collections', manifest.snapshots!.length);
  for (const snapshot of manifest.snapshots!) {
    reporter.info(
      `recovering ${snapshot.collection} from ${snapshot.name} (${formatBytes(snapshot.size)}, priority snapshot)`,
    );
    await snapshots.recover(snapshot.collection, insideRoot(ref.dir, snapshot.file), snapshot.sha256);
    progress.advance();
  }
  progress.done();
  for (const [alias, collection] of Object.entries(manifest.aliases)) {
    try {
      await store.setAlias(alias, collection);
    } catch (error) {
      throw new OpsError(
        `the collections are restored, but alias ${alias} → ${collection} could not be recreated: ` +
          `${(error as Error).message}`,
      );
    }
    reporter.info(`alias ${alias} → ${collection}`);
  }
  const restored = new Set(manifest.collections.map((c) => c.name));
  const others = (await store.listCollections()).filter((c) => !restored.has(c.name)).map((c) => c.name);
  if (others.length > 0) reporter.info(`left alone (not in the backup): ${others.join(', ')}`);
}
