// Original image files under IMAGE_STORAGE_DIR. Names derive from hashes of the ids, so no item id
// (slashes, "..", unicode, 500 characters) can escape the directory or collide with another.
//
// A new file is first written to .incoming/<image_id> (fsynced), the point is upserted, and only then
// is the file renamed into place. A crash in between leaves a file in .incoming/, which the start-up
// check either finishes (its point exists) or removes (it does not): nothing half-done survives.
//
// Deletes go the other way: an intent is written to .journal/ first (fsynced), then the points are
// deleted, then the files, then the intent. A crash in between leaves the intent, which the next start
// carries out again (every step can be repeated), so no file outlives its point for good.
//
// Thumbnails are a cache beside the originals, in .thumbs/ mirroring their paths (<original>-<size>.webp):
// removing an original removes its thumbnails, a wipe removes them all, and a missing one is made again.
import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { insideRoot, isNotFound, writeStreamAtomic } from '../lib/files.js';

const INCOMING = '.incoming';
const JOURNAL = '.journal';
const THUMBS = '.thumbs';
/** Cross-process lock files (lib/process-lock.ts): never removed, not even by a wipe. */
export const LOCKS_DIR = '.locks';
/** Entries of the root a wipe keeps: files of ingests in flight, the journal and the lock files. */
const KEPT_BY_WIPE = new Set([INCOMING, JOURNAL, LOCKS_DIR]);
/** Entries of the root that are not stored images. */
const RESERVED = new Set([INCOMING, JOURNAL, THUMBS, LOCKS_DIR]);

/** An interrupted delete, as written to the journal before it started. */
export type DeleteIntent = { op: 'delete-images'; images: Array<{ image_id: string; file: string }> } | { op: 'wipe' };

export const sha256Hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** File extension for a detected image format. */
const EXTENSIONS: Record<string, string> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
  gif: 'gif',
  tiff: 'tif',
  heif: 'heif',
};
export const extensionFor = (format: string) => EXTENSIONS[format] ?? 'bin';

/** Writes and fsyncs `bytes`; on any failure (a full disk) the partial file is removed before rethrowing. */
async function writeDurably(file: string, bytes: Buffer): Promise<void> {
  try {
    const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o640);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await rm(file, { force: true });
    throw error;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** rm -rf that tolerates a directory gaining an entry meanwhile (ENOTEMPTY from another writer): retries. */
async function removeTree(target: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rm(target, { recursive: true, force: true });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || attempt >= 5) throw error;
    }
  }
}

/** The entries of a directory; none when it does not exist (yet). */
async function entriesOf(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

export class ImageFiles {
  constructor(readonly root: string) {}

  /** Relative path (forward slashes) of an image of an item. */
  relativePath(itemId: string, imageId: string, format: string): string {
    const itemDir = sha256Hex(itemId);
    return `${itemDir.slice(0, 2)}/${itemDir}/${imageId}.${extensionFor(format)}`;
  }

  private absolute(relative: string): string {
    // Paths come from our own payloads, but a restored or hand-edited store must not reach outside.
    return insideRoot(this.root, relative, 'the image directory');
  }

  private incoming(imageId: string): string {
    return path.join(this.root, INCOMING, imageId);
  }

  /** Writes the file of a new image to staging (fsynced); a failure leaves nothing behind. */
  async stage(imageId: string, bytes: Buffer): Promise<void> {
    await mkdir(path.join(this.root, INCOMING), { recursive: true });
    await writeDurably(this.incoming(imageId), bytes);
  }

  /** Moves a staged file into its final place. */
  async commit(imageId: string, relative: string): Promise<void> {
    const target = this.absolute(relative);
    await mkdir(path.dirname(target), { recursive: true });
    await rename(this.incoming(imageId), target);
  }

  async discard(imageId: string): Promise<void> {
    await rm(this.incoming(imageId), { force: true });
  }

  /** Image ids in staging, optionally only those untouched for `olderThanMs`. */
  async staged(olderThanMs = 0): Promise<string[]> {
    const dir = path.join(this.root, INCOMING);
    const ids = await entriesOf(dir);
    if (olderThanMs <= 0) return ids;
    const cutoff = Date.now() - olderThanMs;
    const old: string[] = [];
    for (const id of ids) {
      const info = await stat(path.join(dir, id)).catch(() => undefined);
      if (info && info.mtimeMs < cutoff) old.push(id);
    }
    return old;
  }

  async read(relative: string): Promise<Buffer> {
    return readFile(this.absolute(relative));
  }

  /**
   * The file of a stored image, waiting briefly while it is still staged: an ingest writes the point
   * before it moves the file into place, so a reader that just saw the point may be a moment early.
   */
  async readStored(record: { image_id: string; file: string }, waitMs = 2000): Promise<Buffer> {
    for (const deadline = Date.now() + waitMs; ;) {
      try {
        return await this.read(record.file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || Date.now() > deadline) throw error;
        const staged = await stat(this.incoming(record.image_id)).then(
          () => true,
          () => false,
        );
        // Not staged (any more): it may have been moved into place between the two looks.
        if (!staged) return await this.read(record.file);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async exists(relative: string): Promise<boolean> {
    try {
      return (await stat(this.absolute(relative))).isFile();
    } catch {
      return false;
    }
  }

  /** Removes an original and its thumbnails (with any temporary file a crash left of one). */
  async remove(relative: string): Promise<void> {
    await rm(this.absolute(relative), { force: true });
    const { dir, prefix } = this.thumbnailsOf(relative);
    const thumbnails = (await entriesOf(dir)).filter(
      (entry) => entry.startsWith(prefix) || entry.startsWith(`.${prefix}`),
    );
    await Promise.all(thumbnails.map((entry) => rm(path.join(dir, entry), { force: true })));
  }

  /** Where the thumbnails of an original live: their directory and the name they all start with. */
  private thumbnailsOf(relative: string): { dir: string; prefix: string } {
    const file = insideRoot(path.join(this.root, THUMBS), relative, 'the thumbnail directory');
    return { dir: path.dirname(file), prefix: `${path.basename(file, path.extname(file))}-` };
  }

  private thumbnailFile(relative: string, variant: string): string {
    const { dir, prefix } = this.thumbnailsOf(relative);
    return path.join(dir, `${prefix}${variant}.webp`);
  }

  /** A cached thumbnail of an original (`variant`: its size and recipe); undefined when there is none (yet). */
  async readThumbnail(relative: string, variant: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.thumbnailFile(relative, variant));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Caches a thumbnail (written whole or not at all). */
  async writeThumbnail(relative: string, variant: string, bytes: Buffer): Promise<void> {
    await writeStreamAtomic(Readable.from([bytes]), this.thumbnailFile(relative, variant));
  }

  /**
   * Removes an item's directory (and its thumbnail directory) when no file is left in it (another image
   * may have arrived meanwhile).
   */
  async removeItemDirIfEmpty(itemId: string): Promise<void> {
    const itemDir = sha256Hex(itemId);
    for (const base of [this.root, path.join(this.root, THUMBS)]) {
      try {
        await rmdir(path.join(base, itemDir.slice(0, 2), itemDir));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      }
    }
  }

  /** Removes every stored image and thumbnail, keeping the root itself, ingests in flight and the journal. */
  async wipe(): Promise<void> {
    const stored = (await entriesOf(this.root)).filter((entry) => !KEPT_BY_WIPE.has(entry));
    await Promise.all(stored.map((entry) => removeTree(path.join(this.root, entry))));
  }

  /** Records a delete before it starts; returns its id for `endDelete`. */
  async beginDelete(intent: DeleteIntent): Promise<string> {
    const dir = path.join(this.root, JOURNAL);
    await mkdir(dir, { recursive: true });
    const id = `${Date.now()}-${randomUUID()}`;
    await writeDurably(path.join(dir, `${id}.tmp`), Buffer.from(JSON.stringify(intent)));
    await rename(path.join(dir, `${id}.tmp`), path.join(dir, `${id}.json`));
    await syncDir(dir);
    return id;
  }

  async endDelete(id: string): Promise<void> {
    await rm(path.join(this.root, JOURNAL, `${id}.json`), { force: true });
  }

  /** Deletes a crash interrupted, oldest first (unreadable entries are reported by `id` with no intent). */
  async interruptedDeletes(): Promise<Array<{ id: string; intent?: DeleteIntent }>> {
    const dir = path.join(this.root, JOURNAL);
    const found: Array<{ id: string; intent?: DeleteIntent }> = [];
    for (const entry of (await entriesOf(dir)).sort()) {
      if (entry.endsWith('.tmp')) {
        await rm(path.join(dir, entry), { force: true }); // never completed: its delete never started
        continue;
      }
      if (!entry.endsWith('.json')) continue;
      const id = entry.slice(0, -'.json'.length);
      try {
        found.push({ id, intent: JSON.parse(await readFile(path.join(dir, entry), 'utf8')) as DeleteIntent });
      } catch {
        found.push({ id });
      }
    }
    return found;
  }

  /** Every stored image file, as relative paths (skips staging, the journal and thumbnails). */
  async *list(): AsyncGenerator<string> {
    for (const shard of (await entriesOf(this.root)).sort()) {
      if (RESERVED.has(shard)) continue;
      for (const itemDir of (await entriesOf(path.join(this.root, shard))).sort()) {
        for (const file of (await entriesOf(path.join(this.root, shard, itemDir))).sort()) {
          yield `${shard}/${itemDir}/${file}`;
        }
      }
    }
  }
}
