// The record of the last alias switch made by `ops migrate` (or its rollback): which collection the
// alias left, which it points at now, and which image ids both held at that moment. The ids let a
// later catch-up tell apart "ingested into one collection after the switch" from "deleted from the
// other after the switch" without guessing from clocks.
//
// It lives in BACKUP_DIR/migrations/<alias>.json: BACKUP_DIR is kept by every deployment (the compose
// stack mounts it into the api container; DATA_DIR there is not persistent when Qdrant holds the data),
// and a backup carries the record along so that a restore brings back the matching one.
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { OpsError } from '../cli.js';
import { writeJsonAtomic } from '../../service/src/lib/files.js';

export const MIGRATION_FORMAT = 'erp-image-search-migration/1';

export interface CollectionRef {
  collection: string;
  model: string | null;
  dim: number;
}

export interface MigrationState {
  format: typeof MIGRATION_FORMAT;
  alias: string;
  /** Where the alias points since the switch. */
  live: CollectionRef;
  /** Where it pointed before: the rollback target, deleted by --drop-old. */
  previous: CollectionRef;
  switchedAt: string;
  /** Image ids present in both collections at the switch. */
  shared: string[];
  /** Image ids left out at the switch because their original could not be read (--allow-missing). */
  leftOut?: string[];
  /** The alias replaced a plain collection of that name; `previous` is its copy. */
  legacy?: boolean;
}

export const migrationStatePath = (backupDir: string, alias: string) =>
  path.join(backupDir, 'migrations', `${alias}.json`);

export async function readMigrationState(backupDir: string, alias: string): Promise<MigrationState | undefined> {
  const file = migrationStatePath(backupDir, alias);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let state: MigrationState;
  try {
    state = JSON.parse(text) as MigrationState;
  } catch (error) {
    throw new OpsError(
      `the migration record ${file} is unreadable (${(error as Error).message}); restore it from a backup or remove it`,
    );
  }
  if (state.format !== MIGRATION_FORMAT || state.alias !== alias)
    throw new OpsError(`${file} is not a migration record of ${alias}`);
  return state;
}

export async function writeMigrationState(backupDir: string, state: MigrationState): Promise<void> {
  await writeJsonAtomic(migrationStatePath(backupDir, state.alias), state);
}

export async function removeMigrationState(backupDir: string, alias: string): Promise<void> {
  await rm(migrationStatePath(backupDir, alias), { force: true });
}
