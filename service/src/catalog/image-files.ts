// Original image files under IMAGE_STORAGE_DIR. Names derive from hashes of the ids, so no item id
// (slashes, "..", unicode, 500 characters) can escape the directory or collide with another.
//
// A new file is first written to .incoming/<image_id> (fsynced), the point is upserted, and only then
// is the file renamed into place. A crash in between leaves a file in .incoming/, which the start-up
// check either finishes (its point exists) or removes (it does not): nothing half-done survives.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

const INCOMING = '.incoming';

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

async function writeDurably(file: string, bytes: Buffer): Promise<void> {
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o640);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `relative` resolved under `root`; refuses absolute paths and any path that would leave `root`. */
export function insideRoot(root: string, relative: string, what = root): string {
  const resolved = path.resolve(root, relative);
  if (path.isAbsolute(relative) || !resolved.startsWith(path.resolve(root) + path.sep)) {
    throw new Error(`Refusing a path outside ${what}: ${JSON.stringify(relative)}`);
  }
  return resolved;
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

  staged(): Promise<string[]> {
    return entriesOf(path.join(this.root, INCOMING));
  }

  async read(relative: string): Promise<Buffer> {
    return readFile(this.absolute(relative));
  }

  async exists(relative: string): Promise<boolean> {
    try {
      return (await stat(this.absolute(relative))).isFile();
    } catch {
      return false;
    }
  }

  async remove(relative: string): Promise<void> {
    await rm(this.absolute(relative), { force: true });
  }

  /** Removes the directory of an item (all its files). */
  async removeItem(itemId: string): Promise<void> {
    const itemDir = sha256Hex(itemId);
    await rm(path.join(this.root, itemDir.slice(0, 2), itemDir), { recursive: true, force: true });
  }

  /** Removes every stored image, keeping the root itself and files of ingests still in flight. */
  async wipe(): Promise<void> {
    const stored = (await entriesOf(this.root)).filter((entry) => entry !== INCOMING);
    await Promise.all(stored.map((entry) => rm(path.join(this.root, entry), { recursive: true, force: true })));
  }

  /** Every stored image file, as relative paths (skips .incoming). */
  async *list(): AsyncGenerator<string> {
    for (const shard of (await entriesOf(this.root)).sort()) {
      if (shard === INCOMING) continue;
      for (const itemDir of (await entriesOf(path.join(this.root, shard))).sort()) {
        for (const file of (await entriesOf(path.join(this.root, shard, itemDir))).sort()) {
          yield `${shard}/${itemDir}/${file}`;
        }
      }
    }
  }
}
