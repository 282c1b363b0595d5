// `ops backup`: one complete, verified backup of vectors and images per run, then retention.
//
// The store's part is the adapter's own (StoreBackup): the embedded store copies its database online,
// Qdrant takes collection snapshots. Then the images its points name are copied (unchanged ones
// hard-linked from the previous backup). Where the store's copy can be edited (embedded), a point whose
// item was deleted between the copy and the image pass is removed from the copy, so the backup is
// consistent in itself; a Qdrant snapshot cannot be edited, and the check after a restore lists such points.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ImageFiles } from '../service/src/catalog/image-files.js';
import type { CollectionInfo, StoreBackup, VectorStore } from '../service/src/store/port.js';
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
} from './backup-dir.js';
import { formatBytes, OpsError, type Reporter } from './cli.js';
import { backupImages, type ImageBackupResult } from './image-backup.js';
import { readMigrationState } from './migrate/state.js';
import { scanPoints } from './points.js';

export interface BackupDeps {
  store: VectorStore;
  files: ImageFiles;
  /** QDRANT_COLLECTION. */
  alias: string;
  backupDir: string;
  keep: number;
  reporter: Reporter;
  /** The store's backup capability (service/src/store/open-store.ts storeBackup). */
  backup: StoreBackup;
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
  let body: BackupBody | undefined;
  let manifest: BackupManifest;
  let dir: string;
  try {
    body = await backupBody(deps, work, previous);
    const migration = await readMigrationState(backupDir, alias);
    manifest = {
      format: MANIFEST_FORMAT,
      id,
      createdAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      store: store.kind,
      alias,
      ...body.manifest,
      ...(migration ? { migration } : {}),
    };
    dir = (await finishBackup(backupDir, manifest)).dir;
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    await deps.backup.forget(body?.manifest.snapshots ?? []).catch(() => undefined);
    throw error;
  }
  const storeBytes = manifest.database?.size ?? (manifest.snapshots ?? []).reduce((sum, s) => sum + s.size, 0);
  const size = storeBytes + manifest.images.bytes;
  reporter.info(
    `backup ${id}: ${manifest.collections.map((c) => `${c.name} (${c.points} points)`).join(', ')}; ` +
      `${manifest.images.count} images (${body.images.copied} copied, ${body.images.linked} unchanged and ` +
      `linked); ${formatBytes(size)} in ${dir}`,
  );
  const retention = await pruneBackups(backupDir, deps.keep, (old) => deps.backup.forget(old.snapshots ?? []));
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

/** The store's copy, then the images its points name; the copy drops points deleted meanwhile if it can. */
async function backupBody(deps: BackupDeps, work: string, previous: PreviousImages): Promise<BackupBody> {
  const { store, files, alias, reporter } = deps;
  const allAliases = await store.listAliases();
  const own = ownCollections(await store.listCollections(), alias, allAliases);
  if (own.length === 0) {
    throw new OpsError(
      `the ${store.kind} store has no collection ${alias} (QDRANT_COLLECTION) and no ${alias}_* collections; ` +
        'nothing to back up',
    );
  }
  reporter.info(`copying the ${store.kind} store (${own.map((c) => c.name).join(', ')})`);
  const dump = await deps.backup.dump(work, own);
  try {
    // From here on the copy is the truth: its points decide which images belong to the backup.
    const source = dump.points;
    const collections = dump.editable ? await source.listCollections() : own;
    const names = new Set(collections.map((c) => c.name));
    const aliases = Object.fromEntries(
      Object.entries(dump.editable ? await source.listAliases() : allAliases).filter(([, to]) => names.has(to)),
    );
    const listed = await imagesOf(source, [...names]);
    const images = await backupImages({
      sourceRoot: files.root,
      targetRoot: path.join(work, 'images'),
      wanted: listed.wanted,
      previous,
      reporter,
    });
    reportMismatches(images, reporter);
    const absent = await sortAbsent(store, listed.owners, images.vanished, reporter);
    let points = listed.points;
    if (dump.editable) {
      // Points deleted during the backup leave the copy too: the backup then matches a moment just after it.
      for (const { collection, image_id } of absent.deleted)
        await source.collection(collection).deleteImages([image_id]);
      points -= absent.deleted.length;
    }
    const final = dump.editable ? await source.listCollections() : collections;
    const storeFiles = await dump.seal();
    return {
      manifest: {
        aliases,
        collections: final,
        ...(store.kind === 'embedded'
          ? { database: storeFiles[0] }
          : {
              snapshots: storeFiles.map((f) => ({
                collection: f.collection!,
                name: f.name!,
                file: f.file,
                size: f.size,
                sha256: f.sha256,
              })),
            }),
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
  } catch (error) {
    await dump.abort();
    throw error;
  }
}
