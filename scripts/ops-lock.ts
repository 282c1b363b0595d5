// One operations command at a time (backup, restore, migrate): two backups pruning each other, or a
// restore under a running migration, would each be safe alone and wrong together. The lock is a file
// in BACKUP_DIR, the one directory every deployment keeps and every command can reach, created with
// O_EXCL. A lock left by a process that died on this host is taken over; one from another host (or
// container) cannot be checked, so the message says how to remove it.
import { hostname } from 'node:os';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { OpsError } from './cli.js';

interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

const LOCK_FILE = '.ops.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireOpsLock(dir: string, command: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o640);
      try {
        await handle.writeFile(`${JSON.stringify(owner)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return async () => {
        await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder: Partial<LockOwner> = {};
    try {
      holder = JSON.parse(await readFile(file, 'utf8')) as LockOwner;
    } catch {
      // Unreadable or empty: written by a process that died between create and write.
    }
    const stale =
      holder.host === owner.host && typeof holder.pid === 'number' ? !alive(holder.pid) : holder.pid === undefined;
    if (!stale) {
      throw new OpsError(
        `another operations command (${holder.command ?? 'unknown'}, pid ${holder.pid} on ${holder.host}, ` +
          `since ${holder.since}) holds ${file}; ` +
          `wait for it to finish, or delete that file if no such command is running`,
      );
    }
    await rm(file, { force: true });
  }
  throw new OpsError(`could not take the lock ${file}; another command took it at the same moment, try again`);
}
