// The original images in a backup: <backup>/images/<relative path>, listed in the manifest with size
// and sha256. A file that is unchanged since the previous backup (same path, size and mtime; images
// are never rewritten in place, their names carry the image id) is hard-linked from it, so every
// backup is complete on its own while an unchanged image costs no extra space.
import path from 'node:path';
import type { ImageEntry } from './backup-dir.js';
import { OpsError, type Reporter } from './cli.js';
import {
  ChecksumError,
  copyFileAtomic,
  fileStat,
  forEachLimited,
  insideRoot,
  isNotFound,
  linkOrCopy,
  sha256File,
} from '../service/src/lib/files.js';

const CONCURRENCY = 8;

export interface ImageBackupResult {
  files: ImageEntry[];
  /** Listed by a point but gone when copied: the item was deleted during the backup. */
  vanished: string[];
  /** Copied, but their content differs from the sha256 recorded when they were ingested. */
  mismatched: string[];
  linked: number;
  copied: number;
  bytes: number;
}

export async function backupImages(options: {
  sourceRoot: string;
  targetRoot: string;
  /** Relative path → the sha256 its point records. */
  wanted: Map<string, string>;
  previous?: { root: string; entries: ImageEntry[] };
  reporter: Reporter;
}): Promise<ImageBackupResult> {
  const { sourceRoot, targetRoot, wanted, reporter } = options;
  const previous = new Map((options.previous?.entries ?? []).map((entry) => [entry.path, entry]));
  const result: ImageBackupResult = { files: [], vanished: [], mismatched: [], linked: 0, copied: 0, bytes: 0 };
  const progress = reporter.progress('images', wanted.size);
  await forEachLimited([...wanted].sort(), CONCURRENCY, async ([relative, recorded]) => {
    const source = insideRoot(sourceRoot, relative);
    const target = insideRoot(targetRoot, relative);
    const stat = await fileStat(source);
    const before = previous.get(relative);
    let entry: ImageEntry | undefined;
    if (!stat) {
      result.vanished.push(relative);
    } else if (
      before &&
      before.size === stat.size &&
      before.mtimeMs === stat.mtimeMs &&
      (await fileStat(path.join(options.previous!.root, relative)))
    ) {
      await linkOrCopy(insideRoot(options.previous!.root, relative), target);
      entry = before;
      result.linked++;
    } else {
      try {
        const digest = await copyFileAtomic(source, target);
        entry = { path: relative, size: digest.size, sha256: digest.sha256, mtimeMs: stat.mtimeMs };
        result.copied++;
      } catch (error) {
        if (!isNotFound(error)) throw error;
        result.vanished.push(relative);
      }
    }
    if (entry) {
      if (entry.sha256 !== recorded) result.mismatched.push(relative);
      result.files.push(entry);
      result.bytes += entry.size;
    }
    progress.advance();
  });
  progress.done();
  result.files.sort((a, b) => (a.path < b.path ? -1 : 1));
  return result;
}

/** Reads every image of a backup and compares it with the manifest; throws naming the bad files. */
export async function verifyImages(backupRoot: string, entries: ImageEntry[], reporter: Reporter): Promise<void> {
  const bad: string[] = [];
  const progress = reporter.progress('verifying images', entries.length);
  await forEachLimited(entries, CONCURRENCY, async (entry) => {
    try {
      const digest = await sha256File(insideRoot(backupRoot, entry.path));
      if (digest.size !== entry.size || digest.sha256 !== entry.sha256) bad.push(`${entry.path} (content differs)`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      bad.push(`${entry.path} (missing)`);
    }
    progress.advance();
  });
  progress.done();
  if (bad.length > 0) {
    throw new OpsError(
      `the backup is damaged: ${bad.length} image file(s) do not match its manifest, e.g. ` +
        `${bad.slice(0, 3).join(', ')}; nothing was restored`,
    );
  }
}

/** Puts the images of a backup back under IMAGE_STORAGE_DIR; files already equal are left alone. */
export async function restoreImages(options: {
  backupRoot: string;
  targetRoot: string;
  entries: ImageEntry[];
  reporter: Reporter;
}): Promise<{ restored: number; unchanged: number }> {
  const { backupRoot, targetRoot, entries, reporter } = options;
  let restored = 0;
  let unchanged = 0;
  const progress = reporter.progress('restoring images', entries.length);
  await forEachLimited(entries, CONCURRENCY, async (entry) => {
    const target = insideRoot(targetRoot, entry.path);
    const present = await fileStat(target);
    if (present && present.size === entry.size && (await sha256File(target)).sha256 === entry.sha256) {
      unchanged++;
    } else {
      try {
        await copyFileAtomic(insideRoot(backupRoot, entry.path), target, {
          ...entry,
          what: `backup image ${entry.path}`,
        });
      } catch (error) {
        if (error instanceof ChecksumError) throw new OpsError(`the backup changed while restoring: ${error.message}`);
        throw error;
      }
      restored++;
    }
    progress.advance();
  });
  progress.done();
  return { restored, unchanged };
}
