// `ops migrate --to-model`: moves the live collection to another model without downtime.
//
// The API addresses its data by QDRANT_COLLECTION, an alias. Migration re-embeds every stored original
// with the new model into a new collection named after it (<alias>_<model>_<dim>) while the API keeps
// serving the old one, catches up with ingests and deletes that happened meanwhile, verifies the new
// collection (verify.ts), and then moves the alias in one atomic step. The API looks the alias up again at
// least every second and follows; a last catch-up after a pause takes in what reached the old collection
// just before it noticed.
//
// Resumable: points already in the new collection (by image id) are skipped (carry.ts), so an interrupted
// run is simply started again. Points whose original file is missing or unreadable are reported, and the
// switch is refused until they are restored or explicitly left out (--allow-missing). Which ids both
// collections held at a switch is kept in the migration record (state.ts): that is what lets a catch-up
// tell "new since the switch" from "deleted since the switch". The old collection stays for rollback
// (rollback.ts); a plain legacy collection is converted on the way (legacy.ts).
import path from 'node:path';
import type { Embedder } from '../../service/src/embedding/embedder.js';
import { fileSha256, sidecarPathOf } from '../../service/src/embedding/model.js';
import { copyFileAtomic, pathExists } from '../../service/src/lib/files.js';
import { collectionNameFor } from '../../service/src/store/port.js';
import { OpsError } from '../cli.js';
import { Carrier, finalCatchUp, intersect, reportMissing, type CarryPlan, type CarryResult } from './carry.js';
import { collectionInfo, ensureCollection, refOf } from './collections.js';
import { reattachAlias, switchFromLegacy } from './legacy.js';
import {
  MIGRATION_FORMAT,
  readMigrationState,
  writeMigrationState,
  type CollectionRef,
  type MigrationState,
} from './state.js';
import {
  DEFAULTS,
  defaultSleep,
  secondsSince,
  settleMessage,
  type MigrateDeps,
  type MigrateOptions,
  type MigrateSummary,
} from './types.js';
import { verifyCounts, verifySearch } from './verify.js';

/**
 * The API loads a migrated collection's model as NAME.onnx from the directory of MODEL_PATH. Returns that
 * path and whether the new model must be copied there; refuses (before anything changes) when another
 * file already has that name, since the API would then embed with other weights than the collection's.
 */
async function apiModelPlace(deps: MigrateDeps, embedder: Embedder): Promise<{ apiPath: string; copy: boolean }> {
  const { name, sha256 } = embedder.manifest;
  const apiPath = path.join(path.dirname(path.resolve(deps.modelPath)), `${name}.onnx`);
  if (!(await pathExists(apiPath))) return { apiPath, copy: true };
  const existing = await fileSha256(apiPath);
  if (existing !== sha256) {
    throw new OpsError(
      `${apiPath} exists with other weights (sha256 ${existing}) than the model to migrate to ` +
        `(${path.resolve(embedder.path)}, sha256 ${sha256}); the API loads the live collection's model from there ` +
        `by name. Nothing was changed. Move that file (and its .json) away, or export the new model under another ` +
        `name (its sidecar's "name")`,
    );
  }
  return { apiPath, copy: !(await pathExists(sidecarPathOf(apiPath))) };
}

/** Copies the model and its sidecar beside MODEL_PATH (each atomically: temp file, fsync, rename). */
async function copyForApi(deps: MigrateDeps, embedder: Embedder, apiPath: string): Promise<void> {
  const source = path.resolve(embedder.path);
  await copyFileAtomic(source, apiPath, { sha256: embedder.manifest.sha256, what: source });
  await copyFileAtomic(sidecarPathOf(source), sidecarPathOf(apiPath));
  deps.reporter.info(`copied ${source} and its sidecar to ${apiPath}, where the API loads it from`);
}

async function takeEbsSnapshot(deps: MigrateDeps, reason: string): Promise<string | undefined> {
  const { ec2, reporter } = deps;
  if (!ec2) return undefined;
  const identity = await ec2.detect();
  if (!identity) {
    reporter.info(
      'no EBS snapshot: instance metadata did not answer (not on EC2, or a container behind an IMDS hop limit of 1); ' +
        'take one with "npm run ops -- ebs-snapshot" where AWS is reachable, or pass --skip-ebs-snapshot',
    );
    return undefined;
  }
  reporter.info(`on EC2 instance ${identity.instanceId}: taking an EBS snapshot of the data volume first`);
  try {
    return await ec2.snapshot(identity, reason);
  } catch (error) {
    throw new OpsError(
      `the EBS snapshot before the migration failed (${(error as Error).message}); nothing was changed. Fix ` +
        `it, or pass --skip-ebs-snapshot`,
    );
  }
}

export async function migrate(deps: MigrateDeps, options: MigrateOptions): Promise<MigrateSummary> {
  const { store, reporter, alias } = deps;
  const clock = performance.now();
  const sleep = deps.sleep ?? defaultSleep;
  const settleMs = options.settleMs ?? DEFAULTS.settleMs;
  const embedder = await deps.models.fromPath(options.toModel);
  const { name: model, dim, sha256 } = embedder.manifest;
  const target = collectionNameFor(alias, model, dim);
  const carrier = new Carrier(deps, options.batchSize);

  const state = await readMigrationState(deps.backupDir, alias);
  let live = await store.collection(alias).info();
  if (!live && (await reattachAlias(deps, state))) live = await store.collection(alias).info();
  if (!live)
    throw new OpsError(
      `there is no collection or alias ${alias} (QDRANT_COLLECTION) in the ${store.kind} store; nothing to migrate`,
    );
  const legacy = !(alias in (await store.listAliases()));
  const from = live.name;
  const summary = (fields: Partial<MigrateSummary>): MigrateSummary => ({
    what: 'migrate',
    alias,
    from,
    to: target,
    points: 0,
    carried: 0,
    deleted: 0,
    missing: 0,
    caughtUp: 0,
    ...fields,
    duration: secondsSince(clock),
  });

  if (live.model === model && live.modelSha256 && live.modelSha256 !== sha256) {
    throw new OpsError(
      `${live.name} holds vectors of ${model} with other weights (sha256 ${live.modelSha256}) than ` +
        `${options.toModel} (sha256 ${sha256}), and a collection and a model file are found by the model's ` +
        `name; nothing was changed. Export the new model under another name (its sidecar's "name", e.g. ` +
        `${model}_imagenet) and migrate to that`,
    );
  }
  if (live.name === target) {
    if (state?.live.collection !== target) {
      reporter.info(`${alias} already points at ${target} (model ${model}); nothing to do`);
      return summary({ from: target, points: live.points });
    }
    // The switch happened but the run ended before its last catch-up (or this is a second run): do it now.
    reporter.info(`${alias} already points at ${target}; running the catch-up from ${state.previous.collection}`);
    const final = await finalCatchUp(carrier, state, embedder, true);
    return summary({
      from: state.previous.collection,
      points: await store.collection(target).count(),
      caughtUp: final.added,
      deleted: final.deleted,
      missing: final.missing.length,
    });
  }
  if (live.model === model && live.dim === dim) {
    reporter.info(`${live.name} already holds ${dim}-d vectors of model ${model}; nothing to do`);
    return summary({ to: live.name, points: live.points });
  }
  const place = await apiModelPlace(deps, embedder);
  if (
    state &&
    state.previous.collection !== target &&
    state.previous.collection !== live.name &&
    (await collectionInfo(store, state.previous.collection))
  ) {
    throw new OpsError(
      `${state.previous.collection}, left by the last migration for rollback, still exists; run "migrate ` +
        `--drop-old" (or "migrate --rollback") before starting another migration`,
    );
  }
  const legacyModel = live.model ?? options.legacyModel;
  if (legacy && !legacyModel) {
    throw new OpsError(
      `${alias} is a plain collection that records no model; pass --legacy-model NAME (the sidecar name of the ` +
        `model that made its ${live.dim}-d vectors, ` +
        `e.g. mobilenet_v3_small) so that a rollback knows which model serves it`,
    );
  }

  const ebsSnapshot = options.skipEbsSnapshot
    ? undefined
    : await takeEbsSnapshot(deps, `before migrating ${alias} to ${model}`);
  reporter.info(
    `migrating ${alias}: ${live.name} (${live.points} points, ` +
      `${live.dim}-d${live.model ? `, ${live.model}` : ''}) → ${target} (${dim}-d, ${model})`,
  );
  if (place.copy) await copyForApi(deps, embedder, place.apiPath);
  await ensureCollection(store, reporter, target, embedder.manifest);
  const source = store.collection(live.name);
  const targetCollection = store.collection(target);
  const mirror = (label: string): CarryPlan => ({
    label,
    source,
    target: targetCollection,
    embedder,
    targetModel: model,
    shouldDelete: () => true,
  });

  // The bulk pass, then a catch-up for what changed during it. Later changes are covered after the switch.
  const first = await carrier.carry(mirror(`re-embedding ${live.name} → ${target}`));
  let last = await carrier.carry(mirror('catching up'));
  let carried = first.added + last.added;
  let deleted = first.deleted + last.deleted;
  const reported = new Set<string>();
  const gateMissing = (pass: CarryResult) => {
    const fresh = pass.missing.filter((m) => !reported.has(m.image_id));
    if (fresh.length === 0) return;
    for (const m of fresh) reported.add(m.image_id);
    reportMissing(fresh, reporter);
    if (!options.allowMissing) {
      throw new OpsError(
        `${pass.missing.length} stored image(s) cannot be read (listed above), so their points cannot be ` +
          `re-embedded; the alias was not switched. ` +
          `Restore the files (npm run ops -- restore) and run again, or run again with --allow-missing to ` +
          `leave them out of ${target}`,
      );
    }
    reporter.warn(
      `leaving ${pass.missing.length} point(s) without a readable original out of ${target} (--allow-missing); ` +
        `they stay in ${from}`,
    );
  };
  gateMissing(last);

  reporter.info(`preparing the search index of ${target}`);
  await store.prepareIndex(target);
  await verifyCounts(deps, { source: live.name, target }, targetCollection, last);
  await verifySearch(deps, targetCollection, last.targetIds, embedder, options.verifySample ?? DEFAULTS.verifySample);

  const switchRecord = (previous: CollectionRef, pass: CarryResult): MigrationState => ({
    format: MIGRATION_FORMAT,
    alias,
    live: { collection: target, model, dim },
    previous,
    switchedAt: new Date().toISOString(),
    shared: intersect(pass.sourceIds, pass.targetIds),
    ...(pass.missing.length > 0 ? { leftOut: pass.missing.map((m) => m.image_id) } : {}),
  });
  let previous: CollectionRef = refOf(live);
  if (legacy) {
    const converted = await switchFromLegacy({
      carrier,
      live,
      legacyModel: legacyModel!,
      target,
      mirror,
      gateMissing,
      record: switchRecord,
    });
    last = converted.last;
    previous = converted.previous;
    carried += last.added;
    deleted += last.deleted;
  } else {
    await writeMigrationState(deps.backupDir, switchRecord(previous, last));
    await store.setAlias(alias, target);
  }
  reporter.info(settleMessage(alias, target, settleMs));
  await sleep(settleMs);
  const final = await finalCatchUp(carrier, (await readMigrationState(deps.backupDir, alias))!, embedder, false);
  reporter.info(
    `done: ${alias} → ${target}. The old collection ${previous.collection} is kept: "migrate --rollback" ` +
      `switches back, "migrate --drop-old" deletes it`,
  );
  // The running API has followed already; a restarted one checks MODEL_PATH against the live collection.
  reporter.info(`before the next restart of the API, set MODEL_PATH=${place.apiPath}`);
  return summary({
    points: await targetCollection.count(),
    carried,
    deleted: deleted + final.deleted,
    missing: last.missing.length + final.missing.length,
    caughtUp: final.added,
    ...(ebsSnapshot ? { ebsSnapshot } : {}),
  });
}
