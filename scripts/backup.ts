// `ops backup`: one complete, verified backup of vectors and images per run, then retention.
//
// Embedded store: an online copy of the SQLite database through SQLite's backup API (consistent while
// the API keeps writing), then the images its points name. A point whose item is deleted between the
// copy and the image pass is also removed from the copy, so the backup is consistent in itself.
//
// Qdrant: a collection snapshot of every collection of this deployment (QDRANT_COLLECTION and the
// <alias>_<model>_<dim> collections, among them the one a migration keeps for rollback), downloaded
// and checked against the sha256 Qdrant reports, then the images. Collection snapshots do not contain
// aliases; the manifest records them and restore recreates them. (A full-storage snapshot would hold
// them, but Qdrant loads one only when it is restarted with --storage-snapshot, which a restore into
// the running stack cannot do.)
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ImageFiles } from '../service/src/catalog/image-files.js';
import { EmbeddedStore, openEmbeddedStore } from '../service/src/store/embedded/store.js';
import type { CollectionInfo, VectorStore } from '../service/src/store/port.js';
import {
  backupIdFor,
  finishBackup,
  listBackups,
  MANIFEST_FORMAT,
  partialDir,
  pruneBackups,
  readManifest,
  removeLeftovers,
  type BackupManifest,
  type SnapshotEntry,
} from './backup-dir.js';
import { formatBytes, OpsError, type Reporter } from './cli.js';
import { sha256File } from './files.js';
import { backupImages, type ImageBackupResult } from './image-backup.js';
import { readMigrationState } from './migration-state.js';
import { scanPoints } from './points.js';
import type { QdrantSnapshots } from './qdrant-snapshots.js';

export interface BackupDeps {
  store: VectorStore;
  files: ImageFiles;
  /** QDRANT_COLLECTION. */
  alias: string;
  backupDir: string;
  keep: number;
  reporter: Reporter;
  /** Required for the Qdrant store. */
  snapshots?: QdrantSnapshots;
  now?: () => Date;
}

export interface BackupSummary {
  what: 'backup';
  store: 'embedded' | 'qdrant';
  id: string;
  dir: string;
  /** Bytes of the backup (database or snapshots plus images; linked images count too). */
  size: number;
  /** Seconds. */
  duration: number;
  kept: number;
  deleted: number;
  collections: string[];
  points: number;
  images: number;
  linked: number;
  copied: number;
  /** Images deleted with their item during the backup. */
  vanished: number;
  /** Images missing although their point exists (backed up without them). */
  missing: number;
}

/** Where a run keeps the database copy: a directory the embedded store can open as its own. */
const DATABASE_DIR = 'store';

interface Owner {
  collection: string;
  image_id: string;
}

interface BackupBody {
  manifest: Pick<BackupManifest, 'aliases' | 'collections' | 'database' | 'snapshots' | 'images'>;
  images: ImageBackupResult;
  points: number;
}

type PreviousImages = Awaited<ReturnType<typeof previousImages>>;

/** Collections of this deployment: the alias target and the <alias>_* collections migrations make. */
function ownCollections(all: CollectionInfo[], alias: string, aliases: Record<string, string>): CollectionInfo[] {
  const live = aliases[alias] ?? alias;
  return all.filter((c) => c.name === live || c.name === alias || c.name.startsWith(`${alias}_`));
}

/** Relative path → recorded sha256, and which points name each file. */
async function imagesOf(store: VectorStore, collections: string[]) {
  const wanted = new Map<string, string>();
  const owners = new Map<string, Owner[]>();
  let points = 0;
  for (const name of collections) {
    for await (const { record } of scanPoints(store.collection(name))) {
      points++;
      wanted.set(record.file, record.sha256);
      const list = owners.get(record.file) ?? [];
      list.push({ collection: name, image_id: record.image_id });
      owners.set(record.file, list);
    }
  }
  return { wanted, owners, points };
}

async function previousImages(backupDir: string) {
  const [latest] = await listBackups(backupDir);
  if (!latest) return undefined;
  try {
    const manifest = await readManifest(latest);
    return { root: path.join(latest.dir, 'images'), entries: manifest.images.files };
  } catch {
    return undefined; // an unreadable previous backup only costs the incremental shortcut
  }
}

/**
 * Files that were gone when copied: deleted together with their item during the backup (the live store
 * no longer has the point), or missing while their point lives on (kept, and reported: run the check).
 */
async function sortAbsent(live: VectorStore, owners: Map<string, Owner[]>, absent: string[], reporter: Reporter) {
  const deleted: Owner[] = [];
  const vanished: string[] = [];
  const missing: string[] = [];
  for (const file of absent) {
    const points = owners.get(file) ?? [];
    const alive = (
      await Promise.all(points.map((owner) => live.collection(owner.collection).image(owner.image_id)))
    ).some(Boolean);
    if (alive) {
      missing.push(file);
      reporter.warn(
        `image ${file} is missing although its point exists; the point is backed up without it (run "npm run ` +
          `ops -- check")`,
      );
    } else {
      vanished.push(file);
      deleted.push(...points);
      reporter.info(`image ${file} was deleted with its item during the backup`);
    }
  }
  return { deleted, vanished, missing };
}

function reportMismatches(result: ImageBackupResult, reporter: Reporter): void {
  for (const file of result.mismatched.slice(0, 10)) {
    reporter.warn(
      `image ${file} does not match the sha256 recorded when it was ingested (damaged on disk?); backed up as it is`,
    );
  }
}

export async function runBackup(deps: BackupDeps): Promise<BackupSummary> {
  const { store, alias, backupDir, reporter } = deps;
  const clock = performance.now();
  const started = (deps.now ?? (() => new Date()))();
  await mkdir(backupDir, { recursive: true });
  for (const leftover of await removeLeftovers(backupDir))
    reporter.info(`removed ${leftover}, left by an interrupted run`);
  const id = backupIdFor(started);
  if ((await listBackups(backupDir)).some((backup) => backup.id === id))
    throw new OpsError(`a backup ${id} exists already; try again`);
  const work = partialDir(backupDir, id);
  await mkdir(work, { recursive: true });
  const previous = await previousImages(backupDir);
  const createdSnapshots: SnapshotEntry[] = [];
  let body: BackupBody;
  let manifest: BackupManifest;
  let dir: string;
  try {
    body =
      store.kind === 'embedded'
        ? await backupEmbedded(deps, work, previous)
        : await backupQdrant(deps, work, previous, createdSnapshots);
    const migration = await readMigrationState(backupDir, alias);
    manifest = {
      format: MANIFEST_FORMAT,
      id,
      created_at: started.toISOString(),
      finishedAt: new Date().toISOString(),
      store: store.kind,
      alias,
      ...body.manifest,
      ...(migration ? { migration } : {}),
    };
    dir = (await finishBackup(backupDir, manifest)).dir;
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    for (const snapshot of createdSnapshots)
      await deps.snapshots?.delete(snapshot.collection, snapshot.name).catch(() => undefined);
    throw error;
  }
  const storeBytes = manifest.database?.size ?? (manifest.snapshots ?? []).reduce((sum, s) => sum + s.size, 0);
  const size = storeBytes + manifest.images.bytes;
  reporter.info(
    `backup ${id}: ${manifest.collections.map((c) => `${c.name} (${c.points} points)`).join(', ')}; ` +
      `${manifest.images.count} images (${body.images.copied} copied, ${body.images.linked} unchanged and ` +
      `linked); ${formatBytes(size)} in ${dir}`,
  );
  const retention = await pruneBackups(backupDir, deps.keep, async (old) => {
    for (const snapshot of old.snapshots ?? []) await deps.snapshots?.delete(snapshot.collection, snapshot.name);
  });
  for (const gone of retention.deleted) reporter.info(`deleted old backup ${gone} (keeping the newest ${deps.keep})`);
  return {
    what: 'backup',
    store: store.kind,
    id,
    dir,
    size,
    duration: Number(((performance.now() - clock) / 1000).toFixed(3)),
    kept: retention.kept.length,
    deleted: retention.deleted.length,
    collections: manifest.collections.map((c) => c.name),
    points: body.points,
    images: manifest.images.count,
    linked: body.images.linked,
    copied: body.images.copied,
    vanished: manifest.images.vanished.length,
    missing: manifest.images.missing.length,
  };
}

async function backupEmbedded(deps: BackupDeps, work: string, previous: PreviousImages): Promise<BackupBody> {
  const { store, files, reporter } = deps;
  if (!(store instanceof EmbeddedStore)) throw new Error('backupEmbedded needs the embedded store');
  const databaseDir = path.join(work, DATABASE_DIR);
  await mkdir(databaseDir, { recursive: true });
  const databaseFile = path.join(databaseDir, path.basename(store.databasePath));
  reporter.info(`copying the database ${store.databasePath} (SQLite online backup)`);
  await store.backupTo(databaseFile);

  // From here on the copy is the truth: its points decide which images belong to the backup.
  const copy = openEmbeddedStore({ dataDir: databaseDir });
  let images: ImageBackupResult;
  let absent: Awaited<ReturnType<typeof sortAbsent>>;
  let points: number;
  let collections: CollectionInfo[];
  let aliases: Record<string, string>;
  try {
    aliases = await copy.listAliases();
    const listed = await imagesOf(
      copy,
      (await copy.listCollections()).map((c) => c.name),
    );
    images = await backupImages({
      sourceRoot: files.root,
      targetRoot: path.join(work, 'images'),
      wanted: listed.wanted,
      previous,
      reporter,
    });
    reportMismatches(images, reporter);
    absent = await sortAbsent(store, listed.owners, images.vanished, reporter);
    // Points deleted during the backup leave the copy too: the backup then matches a moment just after it.
    for (const { collection, image_id } of absent.deleted) await copy.collection(collection).deleteImages([image_id]);
    points = listed.points - absent.deleted.length;
    collections = await copy.listCollections();
  } finally {
    await copy.close();
  }
  await rm(path.join(databaseDir, 'index'), { recursive: true, force: true }); // derived data, rebuilt on restore
  const digest = await sha256File(databaseFile);
  return {
    manifest: {
      aliases,
      collections,
      database: { file: path.relative(work, databaseFile), size: digest.size, sha256: digest.sha256 },
      images: {
        count: images.files.length,
        bytes: images.bytes,
        vanished: absent.vanished,
        missing: absent.missing,
        files: images.files,
      },
    },
    images,
    points,
  };
}

async function backupQdrant(
  deps: BackupDeps,
  work: string,
  previous: PreviousImages,
  created: SnapshotEntry[],
): Promise<BackupBody> {
  const { store, files, alias, reporter, snapshots } = deps;
  if (!snapshots) throw new Error('backupQdrant needs QdrantSnapshots');
  const allAliases = await store.listAliases();
  const collections = ownCollections(await store.listCollections(), alias, allAliases);
  if (collections.length === 0)
    throw new OpsError(
      `Qdrant has no collection ${alias} (QDRANT_COLLECTION) and no ${alias}_* collections; nothing to back up`,
    );
  const names = new Set(collections.map((c) => c.name));
  const aliases = Object.fromEntries(Object.entries(allAliases).filter(([, target]) => names.has(target)));

  for (const collection of collections) {
    reporter.info(`snapshot of ${collection.name} (${collection.points} points)`);
    const description = await snapshots.create(collection.name);
    const entry: SnapshotEntry = {
      collection: collection.name,
      name: description.name,
      file: path.join('snapshots', collection.name, description.name),
      size: description.size,
      sha256: '',
    };
    created.push(entry);
    if (!description.checksum)
      reporter.warn(`Qdrant reported no checksum for ${description.name}; only its size is verified`);
    const digest = await snapshots.download(collection.name, description, path.join(work, entry.file));
    entry.sha256 = digest.sha256;
  }
  // After the snapshots: every file their points name still exists, or was deleted with its item.
  const listed = await imagesOf(store, [...names]);
  const images = await backupImages({
    sourceRoot: files.root,
    targetRoot: path.join(work, 'images'),
    wanted: listed.wanted,
    previous,
    reporter,
  });
  reportMismatches(images, reporter);
  // A snapshot cannot be edited: points of items deleted meanwhile stay in it, and the check after a
  // restore lists them.
  const absent = await sortAbsent(store, listed.owners, images.vanished, reporter);
  return {
    manifest: {
      aliases,
      collections,
      snapshots: created,
      images: {
        count: images.files.length,
        bytes: images.bytes,
        vanished: absent.vanished,
        missing: absent.missing,
        files: images.files,
      },
    },
    images,
    points: listed.points,
  };
}
