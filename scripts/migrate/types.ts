// What `ops migrate` is given (the store, files, models, where the record lives) and what it reports, shared
// by the modules of the migration (carry, verify, legacy conversion, rollback).
import type { ImageFiles } from '../../service/src/catalog/image-files.js';
import type { ModelRegistry } from '../../service/src/embedding/registry.js';
import type { VectorStore } from '../../service/src/store/port.js';
import type { Reporter } from '../cli.js';

export interface Ec2Hooks {
  /** The instance we run on, or undefined when not on EC2 (instance metadata, short timeout). */
  detect(): Promise<{ instanceId: string; region: string } | undefined>;
  /** Takes the EBS snapshot of the data volume; throws when it cannot. */
  snapshot(identity: { instanceId: string; region: string }, reason: string): Promise<string>;
}

export interface MigrateDeps {
  store: VectorStore;
  files: ImageFiles;
  /** Loads the new model from its path and, for rollback, the old one by name beside MODEL_PATH. */
  models: ModelRegistry;
  /** QDRANT_COLLECTION. */
  alias: string;
  /** MODEL_PATH of the API: it loads a migrated collection's model by name from this directory. */
  modelPath: string;
  /** Holds the migration record. */
  backupDir: string;
  reporter: Reporter;
  ec2?: Ec2Hooks;
  /** Stops the work at the next batch (Ctrl-C); the run can be resumed. */
  signal?: AbortSignal;
  sleep?: (ms: number) => Promise<void>;
}

export interface MigrateOptions {
  toModel: string;
  /** Images embedded per batch (default 32). */
  batchSize?: number;
  /** Stored images searched for themselves before the switch (default 20). */
  verifySample?: number;
  /** Pause after the switch before the last catch-up; longer than the API's 1 s alias refresh (default 5000 ms). */
  settleMs?: number;
  allowMissing?: boolean;
  skipEbsSnapshot?: boolean;
  /** Name of the model that made a legacy collection without a recorded model (for its rollback). */
  legacyModel?: string;
}

export interface MigrateSummary {
  what: 'migrate' | 'rollback' | 'drop-old';
  alias: string;
  from: string;
  to: string;
  /** Points in the collection the alias points at when done. */
  points: number;
  /** Points written (re-embedded or copied) by this run. */
  carried: number;
  /** Points deleted from the target because they were deleted from the source. */
  deleted: number;
  /** Points left out because their original file is missing or unreadable. */
  missing: number;
  /** Points added by the catch-up after the switch. */
  caughtUp: number;
  ebsSnapshot?: string;
  duration: number;
}

export const DEFAULTS = { batchSize: 32, verifySample: 20, settleMs: 5000 };

export const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Seconds since `clock` (a performance.now() reading), to the millisecond. */
export const secondsSince = (clock: number) => Number(((performance.now() - clock) / 1000).toFixed(3));

/** How the pause after a switch is announced (migrate and rollback say the same). */
export const settleMessage = (alias: string, collection: string, settleMs: number) =>
  `switched ${alias} → ${collection}; waiting ${Math.round(settleMs / 100) / 10} s for the API to follow before ` +
  `the last catch-up`;
