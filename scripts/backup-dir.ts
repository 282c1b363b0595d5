// The layout of BACKUP_DIR: one directory per backup run, named by its UTC start time so that names
// sort by age (20260314T023000123Z), each complete with a manifest.json. A run writes into
// .partial-<id> and renames it into place only when everything is written and verified, so a
// directory with a backup name is always a whole backup. Deletion renames first, for the same reason.
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { CollectionInfo } from '../service/src/store/port.js';
import { OpsError } from './cli.js';
import { fileStat, fsyncDir, readJson, writeJsonAtomic } from '../service/src/lib/files.js';
import type { MigrationState } from './migrate/state.js';

export const MANIFEST_FORMAT = 'erp-image-search-backup/1';
const MANIFEST_FILE = 'manifest.json';
const ID = /^\d{8}T\d{9}Z$/;
const PARTIAL = '.partial-';
const DELETING = '.deleting-';

export interface ImageEntry {
  /** Relative to IMAGE_STORAGE_DIR and to the backup's images/ directory. */
  path: string;
  size: number;
  sha256: string;
  /** Of the original when it was backed up: an unchanged file is linked from the previous backup. */
  mtimeMs: number;
}

export interface SnapshotEntry {
  collection: string;
  /** The snapshot's name inside Qdrant (deleted there when this backup is pruned). */
  name: string;
  /** Relative to the backup directory. */
  file: string;
  size: number;
  sha256: string;
}

export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  createdAt: string;
  finishedAt: string;
  store: 'embedded' | 'qdrant';
  /** QDRANT_COLLECTION when the backup was taken. */
  alias: string;
  /** Aliases to recreate on restore (Qdrant's collection snapshots do not contain them). */
  aliases: Record<string, string>;
  collections: CollectionInfo[];
  /** Embedded store: the online copy of the database, relative to the backup directory. */
  database?: { file: string; size: number; sha256: string };
  /** Qdrant: one snapshot per collection. */
  snapshots?: SnapshotEntry[];
  /** The migration record at backup time (restore puts it back, so rollback matches the data). */
  migration?: MigrationState;
  images: {
    count: number;
    bytes: number;
    /** Files that disappeared between listing and copying (their item was deleted meanwhile). */
    vanished: string[];
    /** Files missing although their point exists: the point is in the backup without its image. */
    missing: string[];
    files: ImageEntry[];
  };
}

export interface BackupRef {
  id: string;
  dir: string;
}

/** A sortable id from a time: 2026-03-14T02:30:00.123Z → 20260314T023000123Z. */
export function backupIdFor(time: Date): string {
  return time.toISOString().replace(/[-:.]/g, '');
}

/** Complete backups, newest first. */
export async function listBackups(root: string): Promise<BackupRef[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const found: BackupRef[] = [];
  for (const id of entries.filter((entry) => ID.test(entry))) {
    const dir = path.join(root, id);
    if (await fileStat(path.join(dir, MANIFEST_FILE))) found.push({ id, dir });
  }
  return found.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

export async function readManifest(ref: BackupRef): Promise<BackupManifest> {
  let manifest: BackupManifest;
  try {
    manifest = await readJson<BackupManifest>(path.join(ref.dir, MANIFEST_FILE));
  } catch (error) {
    throw new OpsError(`backup ${ref.id} has an unreadable ${MANIFEST_FILE} (${(error as Error).message})`);
  }
  if (manifest.format !== MANIFEST_FORMAT) {
    throw new OpsError(
      `backup ${ref.id} has format ${JSON.stringify(manifest.format)}; this version reads ${String(MANIFEST_FORMAT)}`,
    );
  }
  return manifest;
}

/** The chosen backup, or the newest one. */
export async function findBackup(root: string, id?: string): Promise<BackupRef> {
  const backups = await listBackups(root);
  if (backups.length === 0) throw new OpsError(`no backups in ${root} (BACKUP_DIR); run "npm run ops -- backup" first`);
  if (id === undefined) return backups[0];
  const found = backups.find((backup) => backup.id === id || backup.dir === path.resolve(id));
  if (!found) {
    const names = backups
      .slice(0, 5)
      .map((backup) => backup.id)
      .join(', ');
    throw new OpsError(
      `no backup ${JSON.stringify(id)} in ${root}; newest: ${names}${backups.length > 5 ? ', ...' : ''}`,
    );
  }
  return found;
}

/** Removes what crashed runs left behind (the caller holds the ops lock, so nothing else is writing). */
export async function removeLeftovers(root: string): Promise<string[]> {
  let entries: string[] = [];
  try {
    entries = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const leftovers = entries.filter((entry) => entry.startsWith(PARTIAL) || entry.startsWith(DELETING));
  for (const entry of leftovers) await rm(path.join(root, entry), { recursive: true, force: true });
  return leftovers;
}

export const partialDir = (root: string, id: string) => path.join(root, `${PARTIAL}${id}`);

/** Writes the manifest and moves the finished run into place. */
export async function finishBackup(root: string, manifest: BackupManifest): Promise<BackupRef> {
  const from = partialDir(root, manifest.id);
  await writeJsonAtomic(path.join(from, MANIFEST_FILE), manifest);
  const dir = path.join(root, manifest.id);
  await rename(from, dir);
  await fsyncDir(root);
  return { id: manifest.id, dir };
}

/**
 * Keeps the newest `keep` backups and deletes the rest. `beforeDelete` runs first for each (Qdrant:
 * delete that backup's snapshots inside Qdrant); a failure there keeps the backup for the next run.
 */
export async function pruneBackups(
  root: string,
  keep: number,
  beforeDelete: (manifest: BackupManifest) => Promise<void>,
): Promise<{ kept: string[]; deleted: string[] }> {
  const backups = await listBackups(root);
  const kept = backups.slice(0, keep).map((backup) => backup.id);
  const deleted: string[] = [];
  for (const backup of backups.slice(keep)) {
    await beforeDelete(await readManifest(backup));
    const doomed = path.join(root, `${DELETING}${backup.id}`);
    await rename(backup.dir, doomed);
    await rm(doomed, { recursive: true, force: true });
    deleted.push(backup.id);
  }
  if (deleted.length > 0) await fsyncDir(root);
  return { kept, deleted };
}
