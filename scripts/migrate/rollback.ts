// `migrate --rollback` switches the alias back to the collection the last migration left, carrying
// ingests and deletes made since the switch back to it (re-embedded with the old model); `migrate
// --drop-old` deletes that collection once rolling back is no longer wanted.
import type { Embedder } from '../../service/src/embedding/embedder.js';
import { OpsError } from '../cli.js';
import { Carrier, finalCatchUp, intersect, reportMissing } from './carry.js';
import { collectionInfo } from './collections.js';
import {
  MIGRATION_FORMAT,
  readMigrationState,
  removeMigrationState,
  writeMigrationState,
  type MigrationState,
} from './state.js';
import { DEFAULTS, defaultSleep, secondsSince, settleMessage, type MigrateDeps, type MigrateSummary } from './types.js';

async function requireState(deps: MigrateDeps): Promise<MigrationState> {
  const state = await readMigrationState(deps.backupDir, deps.alias);
  if (!state)
    throw new OpsError(
      `no migration of ${deps.alias} is recorded in ${deps.backupDir}/migrations; nothing to roll back or drop`,
    );
  return state;
}

/** Switches the alias back to the collection it left, carrying over what changed since. */
export async function rollback(
  deps: MigrateDeps,
  options: { settleMs?: number; batchSize?: number } = {},
): Promise<MigrateSummary> {
  const { store, reporter, alias } = deps;
  const clock = performance.now();
  const state = await requireState(deps);
  const current = (await store.listAliases())[alias];
  if (current !== state.live.collection) {
    throw new OpsError(
      `${alias} points at ${current ?? 'nothing'}, but the last recorded switch was to ${state.live.collection}; ` +
        `finish that migration first (run the same migrate command again)`,
    );
  }
  const back = await collectionInfo(store, state.previous.collection);
  if (!back)
    throw new OpsError(
      `${state.previous.collection} no longer exists (dropped with --drop-old?); there is nothing to roll back to`,
    );
  if (!state.previous.model)
    throw new OpsError(`${state.previous.collection} records no model, so no model can serve it after a rollback`);
  let embedder: Embedder;
  try {
    embedder = await deps.models.byName(state.previous.model);
  } catch (error) {
    throw new OpsError(
      `the API could not serve ${state.previous.collection} after a rollback: its model ` +
        `${state.previous.model} must sit beside MODEL_PATH as ${state.previous.model}.onnx ` +
        `(${(error as Error).message})`,
    );
  }
  if (embedder.manifest.dim !== back.dim)
    throw new OpsError(
      `model ${state.previous.model} makes ${embedder.manifest.dim}-d vectors, but ${back.name} holds ${back.dim}-d`,
    );
  const carrier = new Carrier(deps, options.batchSize);
  reporter.info(
    `rolling back ${alias}: ${state.live.collection} → ${back.name}; carrying over what changed since ` +
      `${state.switchedAt}`,
  );
  const shared = new Set(state.shared);
  const pre = await carrier.carry({
    label: `carrying changes ${state.live.collection} → ${back.name}`,
    source: store.collection(state.live.collection),
    target: store.collection(back.name),
    embedder,
    targetModel: embedder.manifest.name,
    shouldAdd: (id) => !shared.has(id),
    shouldDelete: (id) => shared.has(id),
  });
  reportMissing(pre.missing, reporter);
  await store.prepareIndex(back.name);
  const next: MigrationState = {
    format: MIGRATION_FORMAT,
    alias,
    live: state.previous,
    previous: state.live,
    switchedAt: new Date().toISOString(),
    shared: intersect(pre.sourceIds, pre.targetIds),
  };
  await writeMigrationState(deps.backupDir, next);
  await store.setAlias(alias, back.name);
  const settleMs = options.settleMs ?? DEFAULTS.settleMs;
  reporter.info(settleMessage(alias, back.name, settleMs));
  await (deps.sleep ?? defaultSleep)(settleMs);
  const final = await finalCatchUp(carrier, next, embedder, false);
  reporter.info(
    `rolled back: ${alias} → ${back.name}. ${state.live.collection} is kept ("migrate --drop-old" deletes it)`,
  );
  return {
    what: 'rollback',
    alias,
    from: state.live.collection,
    to: back.name,
    points: await store.collection(back.name).count(),
    carried: pre.added,
    deleted: pre.deleted + final.deleted,
    missing: pre.missing.length + final.missing.length,
    caughtUp: final.added,
    duration: secondsSince(clock),
  };
}

/** Deletes the collection the last switch left (the rollback target). */
export async function dropOld(deps: MigrateDeps): Promise<MigrateSummary> {
  const { store, reporter, alias } = deps;
  const clock = performance.now();
  const state = await requireState(deps);
  const current = (await store.listAliases())[alias];
  if (current === state.previous.collection)
    throw new OpsError(`${alias} points at ${state.previous.collection}; it is live and cannot be dropped`);
  const old = await collectionInfo(store, state.previous.collection);
  if (old) {
    await store.deleteCollection(old.name);
    reporter.info(`deleted ${old.name} (${old.points} points); rolling back is no longer possible`);
  } else {
    reporter.info(`${state.previous.collection} was already gone`);
  }
  await removeMigrationState(deps.backupDir, alias);
  return {
    what: 'drop-old',
    alias,
    from: state.previous.collection,
    to: current ?? state.live.collection,
    points: current ? await store.collection(current).count() : 0,
    carried: 0,
    deleted: old?.points ?? 0,
    missing: 0,
    caughtUp: 0,
    duration: secondsSince(clock),
  };
}
