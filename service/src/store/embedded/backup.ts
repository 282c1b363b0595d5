// Backup and restore of the embedded store. Dump: an online copy of the SQLite database through SQLite's
// backup API (consistent while the API keeps writing), opened as a store of its own so the backup can drop
// points deleted while it ran; the vector index is derived data and stays out. Restore: offline, since the
// database file is replaced — a process holding it is detected through SQLite's own locks and refused —
// and the replaced database with its index is moved aside (DATA_DIR/pre-restore-<time>), never deleted.
import { mkdir, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { copyFileAtomic, fsyncDir, insideRoot, pathExists, sha256File } from '../../lib/files.js';
import { StoreBackupError, type CollectionInfo, type DumpFile, type StoreBackup, type StoreDump } from '../port.js';
import { databaseFile, INDEX_DIR, openEmbeddedStore, type EmbeddedStore } from './store.js';

export class EmbeddedBackup implements StoreBackup {
  readonly kind = 'embedded' as const;

  constructor(
    private readonly dataDir: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get live(): string {
    return databaseFile(this.dataDir);
  }

  async dump(dir: string, collections: CollectionInfo[]): Promise<StoreDump> {
    void collections; // the database holds every collection and alias; all of it is copied
    const copyDir = path.join(dir, 'store');
    await mkdir(copyDir, { recursive: true });
    const target = databaseFile(copyDir);
    let copy: EmbeddedStore;
    try {
      const source = new Database(this.live, { fileMustExist: true });
      try {
        await source.backup(target);
      } finally {
        source.close();
      }
      copy = openEmbeddedStore({ dataDir: copyDir });
    } catch (error) {
      // SQLite reports a full target disk as an I/O error: look at the disk to say which it was.
      const stats = await statfs(dir).catch(() => undefined);
      const full = stats !== undefined && stats.bavail * stats.bsize < 1024 * 1024;
      await rm(copyDir, { recursive: true, force: true });
      throw new StoreBackupError(
        `the copy of the database could not be written to ${dir} (${(error as Error).message})` +
          (full ? ': that disk is full; free space there or set BACKUP_DIR to a larger disk' : ''),
      );
    }
    let sealed = false;
    return {
      points: copy,
      editable: true,
      seal: async () => {
        await copy.close();
        sealed = true;
        await rm(path.join(copyDir, INDEX_DIR), { recursive: true, force: true }); // derived: rebuilt after restore
        const digest = await sha256File(target);
        return [{ file: path.relative(dir, target), size: digest.size, sha256: digest.sha256 }];
      },
      abort: async () => {
        if (!sealed) await copy.close().catch(() => undefined);
        await rm(copyDir, { recursive: true, force: true });
      },
    };
  }

  async assertRestorable(): Promise<void> {
    let db: Database.Database;
    try {
      db = new Database(this.live, { fileMustExist: true, timeout: 0 });
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
        throw new StoreBackupError(
          `the embedded database ${this.live} is in use (the API or another command has it open); stop the API ` +
            'first (Ctrl-C, systemctl stop, or docker compose stop api), then run the restore again',
        );
      }
      throw error;
    } finally {
      db.close(); // the last connection: SQLite folds the WAL into the file and removes it
    }
  }

  async restore(dir: string, files: DumpFile[]): Promise<{ previous?: string }> {
    const [entry] = files;
    if (!entry || files.length !== 1) throw new StoreBackupError('an embedded backup holds exactly one database');
    await this.assertRestorable();
    const live = this.live;
    const name = path.basename(live);
    await mkdir(this.dataDir, { recursive: true });
    // Staged beside the live file (same file system) and verified on the way, so the final step is a rename.
    const staged = `${live}.restoring`;
    await copyFileAtomic(insideRoot(dir, entry.file), staged, {
      size: entry.size,
      sha256: entry.sha256,
      what: entry.file,
    });
    // The old -wal must never meet the new file (SQLite would apply it); the index belongs to the old data.
    const stamp = this.now().toISOString().replace(/[-:.]/g, '');
    const aside = path.join(this.dataDir, `pre-restore-${stamp}`);
    let moved = false;
    for (const part of [name, `${name}-wal`, `${name}-shm`, INDEX_DIR]) {
      if (!(await pathExists(path.join(this.dataDir, part)))) continue;
      await mkdir(aside, { recursive: true });
      await rename(path.join(this.dataDir, part), path.join(aside, part));
      moved = true;
    }
    await rename(staged, live);
    await fsyncDir(this.dataDir);
    return moved ? { previous: aside } : {};
  }

  async forget(): Promise<void> {
    // Nothing of a backup stays inside the embedded store.
  }
}
