// `ops migrate`: moves the live collection to another model without downtime, and back.
//
// The API addresses its data by QDRANT_COLLECTION, an alias. Migration re-embeds every stored original
// with the new model into a new collection named after it (<alias>_<model>_<dim>) while the API keeps
// serving the old one, catches up with ingests and deletes that happened meanwhile, verifies the new
// collection (counts, and a sample of stored images must find their own item first), and then moves
// the alias in one atomic step. The API looks the alias up again at least every second and follows;
// a last catch-up after a pause takes in what reached the old collection just before it noticed.
//
// Resumable: points already in the new collection (by image id) are skipped, so an interrupted run is
// simply started again. Points whose original file is missing or unreadable are reported, and the
// switch is refused until they are restored or explicitly left out (--allow-missing).
//
// The old collection stays for `--rollback` (which carries ingests and deletes made since the switch
// back to it, re-embedded with the old model) until `--drop-old`. Which ids both collections held at a
// switch is kept in the migration record (migration-state.ts): that is what lets a catch-up tell "new
// since the switch" from "deleted since the switch".
//
// Legacy: when QDRANT_COLLECTION names a plain collection (made before aliases were used), an alias of
// the same name cannot exist beside it. It is copied as it is to <alias>_<model>_<dim> (the rollback
// target), deleted, and the alias created right after. Between those two requests (milliseconds) the
// API finds no collection and answers 503, and for up to a second after it, until it notices the new
// model, requests can fail; writes that reach the plain collection after its last copy pass are lost.
// Pause ingests (or stop the API) for this one-time conversion.
import path from 'node:path';
import type { ImageFiles } from '../service/src/catalog/image-files.js';
import type { Embedder } from '../service/src/embedding/embedder.js';
import type { ModelRegistry } from '../service/src/embedding/registry.js';
import {
  collectionNameFor,
  type Collection,
  type CollectionInfo,
  type ImageRecord,
  type VectorStore,
} from '../service/src/store/port.js';
import { OpsError, type Reporter } from './cli.js';
import { isNotFound, pathExists } from '../service/src/lib/files.js';
import {
  readMigrationState,
  removeMigrationState,
  writeMigrationState,
  type CollectionRef,
  type MigrationState,
  MIGRATION_FORMAT,
} from './migration-state.js';
import { pointIds, scanPoints } from './points.js';

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

export interface MissingImage {
  image_id: string;
  item_id: string;
  file: string;
  reason: string;
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

const DEFAULTS = { batchSize: 32, verifySample: 20, settleMs: 5000 };

interface CarryPlan {
  label: string;
  source: Collection;
  target: Collection;
  /** Re-embeds with this model; without it vectors are copied as they are (same model and width). */
  embedder?: Embedder;
  targetModel: string;
  /** Which points missing from the target are added (default: all). */
  shouldAdd?: (image_id: string) => boolean;
  /** Which points only the target has are deleted from it. */
  shouldDelete: (image_id: string) => boolean;
}

interface CarryResult {
  added: number;
  deleted: number;
  missing: MissingImage[];
  sourceIds: Set<string>;
  /** The target's ids after this pass. */
  targetIds: Set<string>;
}

class Migration {
  private readonly batchSize: number;

  constructor(
    private readonly deps: MigrateDeps,
    batchSize = DEFAULTS.batchSize,
  ) {
    this.batchSize = batchSize;
  }

  private checkAbort(): void {
    if (this.deps.signal?.aborted) {
      throw new OpsError('interrupted; what is done is kept: run the same command again to resume');
    }
  }

  /** Vectors for images; a batch that fails as a whole is retried image by image to find the bad ones. */
  private async embed(embedder: Embedder, images: Buffer[]): Promise<Array<Float32Array | Error>> {
    try {
      return await embedder.embedBatch(images);
    } catch {
      return Promise.all(images.map((bytes) => embedder.embed(bytes).catch((error: unknown) => error as Error)));
    }
  }

  /** Makes the target take the source's points (and forget deleted ones) as the plan says. */
  async carry(plan: CarryPlan): Promise<CarryResult> {
    const { reporter, files } = this.deps;
    const targetIds = await pointIds(plan.target);
    const sourceIds = new Set<string>();
    const missing: MissingImage[] = [];
    let added = 0;
    const sourceCount = await plan.source.count();
    const progress = reporter.progress(plan.label, Math.max(0, sourceCount - targetIds.size));
    let batch: Array<{ record: ImageRecord; vector?: Float32Array }> = [];

    const flush = async () => {
      this.checkAbort();
      if (batch.length === 0) return;
      const points: Array<{ record: ImageRecord; vector: Float32Array }> = [];
      if (plan.embedder) {
        const read = await Promise.all(
          batch.map(({ record }) =>
            files.readStored(record).then(
              (bytes) => ({ record, bytes }),
              (error: unknown) => ({
                record,
                error: isNotFound(error) ? 'file missing' : `unreadable (${(error as Error).message})`,
              }),
            ),
          ),
        );
        const readable = read.filter((entry): entry is { record: ImageRecord; bytes: Buffer } => 'bytes' in entry);
        for (const entry of read) if ('error' in entry) missing.push(missingOf(entry.record, entry.error));
        const vectors = await this.embed(
          plan.embedder,
          readable.map((entry) => entry.bytes),
        );
        readable.forEach((entry, i) => {
          const vector = vectors[i];
          if (vector instanceof Float32Array)
            points.push({ record: { ...entry.record, model: plan.targetModel }, vector });
          else missing.push(missingOf(entry.record, `not a decodable image (${vector.message})`));
        });
      } else {
        for (const { record, vector } of batch) if (vector) points.push({ record, vector });
      }
      await plan.target.upsertMany(points);
      for (const { record } of points) targetIds.add(record.image_id);
      added += points.length;
      progress.advance(batch.length);
      batch = [];
    };

    for await (const point of scanPoints(plan.source, { withVectors: !plan.embedder })) {
      sourceIds.add(point.record.image_id);
      if (targetIds.has(point.record.image_id) || (plan.shouldAdd && !plan.shouldAdd(point.record.image_id))) continue;
      batch.push(point);
      if (batch.length >= this.batchSize) await flush();
    }
    await flush();
    progress.done();

    const doomed = [...targetIds].filter((id) => !sourceIds.has(id) && plan.shouldDelete(id));
    for (let i = 0; i < doomed.length; i += 256) await plan.target.deleteImages(doomed.slice(i, i + 256));
    for (const id of doomed) targetIds.delete(id);
    return { added, deleted: doomed.length, missing, sourceIds, targetIds };
  }

  /** Every sampled image must find its own item first (or tied first: identical photos of two items). */
  async verifySearch(target: Collection, ids: Set<string>, embedder: Embedder, sample: number): Promise<void> {
    const pool = [...ids];
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    const failures: string[] = [];
    let checked = 0;
    for (const imageId of pool.slice(0, sample)) {
      const record = await target.image(imageId);
      if (!record) continue; // deleted meanwhile
      let bytes: Buffer;
      try {
        bytes = await this.deps.files.read(record.file);
      } catch {
        continue; // deleted meanwhile (the item and its files)
      }
      const hits = await target.searchItems(await embedder.embed(bytes), 5);
      const own = hits.find((hit) => hit.record.item_id === record.item_id);
      if (!own || own.score < hits[0].score - 1e-5) {
        failures.push(
          `image ${imageId} of item ${JSON.stringify(record.item_id)} found ` +
            `${hits[0] ? `item ${JSON.stringify(hits[0].record.item_id)}` : 'nothing'} first`,
        );
      }
      checked++;
    }
    if (failures.length > 0) {
      throw new OpsError(
        `verification failed: ${failures.length} of ${checked} sampled images did not find their own item ` +
          `first (${failures.slice(0, 3).join('; ')}); the alias was not switched`,
      );
    }
    this.deps.reporter.info(`verified: ${checked} sampled images each found their own item first`);
  }
}

function missingOf(record: ImageRecord, reason: string): MissingImage {
  return { image_id: record.image_id, item_id: record.item_id, file: record.file, reason };
}

function reportMissing(missing: MissingImage[], reporter: Reporter): void {
  for (const entry of missing.slice(0, 50)) {
    reporter.warn(`image ${entry.image_id} of item ${JSON.stringify(entry.item_id)}: ${entry.file} ${entry.reason}`);
  }
  if (missing.length > 50) reporter.warn(`... and ${missing.length - 50} more images that cannot be read`);
}

const intersect = (a: Set<string>, b: Set<string>) => [...a].filter((id) => b.has(id)).sort();
const refOf = (info: CollectionInfo): CollectionRef => ({ collection: info.name, model: info.model, dim: info.dim });
const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The API loads a migrated collection's model by its sidecar name from the directory of MODEL_PATH. */
async function warnIfNotBesideApiModel(deps: MigrateDeps, model: string): Promise<void> {
  const expected = path.join(path.dirname(path.resolve(deps.modelPath)), `${model}.onnx`);
  if (!(await pathExists(expected)) || !(await pathExists(expected.replace(/\.onnx$/, '.json')))) {
    deps.reporter.warn(
      `the API loads the model of the live collection from the directory of MODEL_PATH, and ${expected} (with ` +
        `its .json sidecar) is not there: ` +
        `copy the model there before the switch, or the API answers 503 model_unavailable after it until ` +
        `MODEL_PATH points at the new model`,
    );
  }
}

async function collectionInfo(store: VectorStore, name: string): Promise<CollectionInfo | undefined> {
  return (await store.listCollections()).find((c) => c.name === name);
}

async function ensureCollection(
  store: VectorStore,
  reporter: Reporter,
  name: string,
  dim: number,
  model: string,
): Promise<void> {
  const existing = await collectionInfo(store, name);
  if (!existing) {
    await store.createCollection(name, dim, model);
    reporter.info(`created collection ${name} (${dim}-d, model ${model})`);
  } else if (existing.dim !== dim || (existing.model !== null && existing.model !== model)) {
    throw new OpsError(
      `collection ${name} exists with ${existing.dim}-d vectors of model ${existing.model}, not ${dim}-d of ` +
        `${model}; remove it or choose another model`,
    );
  } else {
    reporter.info(`resuming: ${name} already holds ${existing.points} points`);
  }
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
  const { name: model, dim } = embedder.manifest;
  const target = collectionNameFor(alias, model, dim);
  const run = new Migration(deps, options.batchSize);

  const state = await readMigrationState(deps.backupDir, alias);
  let live = await store.collection(alias).info();
  if (!live && state?.legacy && (await collectionInfo(store, state.live.collection))) {
    // A legacy conversion stopped between deleting the plain collection and creating the alias.
    reporter.warn(
      `${alias} is missing after an interrupted conversion; pointing it at ${state.live.collection} as recorded`,
    );
    await store.setAlias(alias, state.live.collection);
    live = await store.collection(alias).info();
  }
  if (!live)
    throw new OpsError(
      `there is no collection or alias ${alias} (QDRANT_COLLECTION) in the ${store.kind} store; nothing to migrate`,
    );
  const legacy = !(alias in (await store.listAliases()));
  await warnIfNotBesideApiModel(deps, model);
  const summary = (fields: Partial<MigrateSummary>): MigrateSummary => ({
    what: 'migrate',
    alias,
    from: live.name,
    to: target,
    points: 0,
    carried: 0,
    deleted: 0,
    missing: 0,
    caughtUp: 0,
    ...fields,
    duration: Number(((performance.now() - clock) / 1000).toFixed(3)),
  });

  if (live.name === target) {
    if (state?.live.collection !== target) {
      reporter.info(`${alias} already points at ${target} (model ${model}); nothing to do`);
      return summary({ from: target, points: live.points });
    }
    // The switch happened but the run ended before its last catch-up (or this is a second run): do it now.
    reporter.info(`${alias} already points at ${target}; running the catch-up from ${state.previous.collection}`);
    const final = await finalCatchUp(run, deps, state, embedder, true);
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
  await ensureCollection(store, reporter, target, dim, model);
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
  const first = await run.carry(mirror(`re-embedding ${live.name} → ${target}`));
  let last = await run.carry(mirror('catching up'));
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
        `they stay in ${live.name}`,
    );
  };
  gateMissing(last);

  reporter.info(`preparing the search index of ${target}`);
  await store.prepareIndex(target);
  const targetCount = await targetCollection.count();
  const stray = [...last.targetIds].filter((id) => !last.sourceIds.has(id)).length;
  if (
    targetCount !== last.targetIds.size ||
    stray > 0 ||
    last.targetIds.size + last.missing.length < last.sourceIds.size
  ) {
    throw new OpsError(
      `verification failed: ${target} holds ${targetCount} points where ` +
        `${last.sourceIds.size - last.missing.length} were expected; the alias was not switched, run again`,
    );
  }
  reporter.info(
    `verified: ${target} holds all ${targetCount} points of ` +
      `${live.name}${last.missing.length ? ` except ${last.missing.length} unreadable` : ''}`,
  );
  await run.verifySearch(targetCollection, last.targetIds, embedder, options.verifySample ?? DEFAULTS.verifySample);

  const switchRecord = (previous: CollectionRef, shared: string[]): MigrationState => ({
    format: MIGRATION_FORMAT,
    alias,
    live: { collection: target, model, dim },
    previous,
    switchedAt: new Date().toISOString(),
    shared,
    ...(last.missing.length > 0 ? { leftOut: last.missing.map((m) => m.image_id) } : {}),
  });
  let previous: CollectionRef = refOf(live);
  if (legacy) {
    const copyName = collectionNameFor(alias, legacyModel!, live.dim);
    await ensureCollection(store, reporter, copyName, live.dim, legacyModel!);
    const copy = store.collection(copyName);
    const copyPlan = (label: string): CarryPlan => ({
      label,
      source,
      target: copy,
      targetModel: legacyModel!,
      shouldDelete: () => true,
    });
    await run.carry(copyPlan(`copying ${alias} → ${copyName} (kept for rollback)`));
    // From here on as close together as possible: catch up, copy the rest, swap collection for alias.
    last = await run.carry(mirror('catching up'));
    gateMissing(last);
    carried += last.added;
    deleted += last.deleted;
    const shared = intersect(last.sourceIds, last.targetIds);
    await run.carry(copyPlan('copying the rest'));
    previous = { collection: copyName, model: legacyModel!, dim: live.dim };
    await writeMigrationState(deps.backupDir, { ...switchRecord(previous, shared), legacy: true });
    reporter.warn(`replacing the plain collection ${alias} by an alias: requests in the next moment may fail`);
    await store.deleteCollection(alias);
    await store.setAlias(alias, target);
  } else {
    const shared = intersect(last.sourceIds, last.targetIds);
    await writeMigrationState(deps.backupDir, switchRecord(previous, shared));
    await store.setAlias(alias, target);
  }
  reporter.info(
    `switched ${alias} → ${target}; waiting ${Math.round(settleMs / 100) / 10} s for the API to follow before ` +
      `the last catch-up`,
  );
  await sleep(settleMs);
  const final = await finalCatchUp(run, deps, (await readMigrationState(deps.backupDir, alias))!, embedder, false);
  reporter.info(
    `done: ${alias} → ${target}. The old collection ${previous.collection} is kept: "migrate --rollback" ` +
      `switches back, "migrate --drop-old" deletes it`,
  );
  return summary({
    from: live.name,
    points: await targetCollection.count(),
    carried,
    deleted: deleted + final.deleted,
    missing: last.missing.length + final.missing.length,
    caughtUp: final.added,
    ...(ebsSnapshot ? { ebsSnapshot } : {}),
  });
}

/**
 * After a switch: takes in what reached the previous collection around it, forgets what was deleted
 * there. Points left out at the switch (unreadable originals, already reported) are tried again only
 * when asked (a later run, after the files may have been restored).
 */
async function finalCatchUp(
  run: Migration,
  deps: MigrateDeps,
  state: MigrationState,
  embedder: Embedder,
  retryLeftOut: boolean,
): Promise<CarryResult> {
  const shared = new Set(state.shared);
  const leftOut = new Set(retryLeftOut ? [] : (state.leftOut ?? []));
  const result = await run.carry({
    label: `catching up from ${state.previous.collection}`,
    source: deps.store.collection(state.previous.collection),
    target: deps.store.collection(state.live.collection),
    embedder,
    targetModel: embedder.manifest.name,
    shouldAdd: (id) => !shared.has(id) && !leftOut.has(id),
    shouldDelete: (id) => shared.has(id),
  });
  reportMissing(result.missing, deps.reporter);
  if (result.added + result.deleted > 0) {
    deps.reporter.info(
      `caught up: ${result.added} point(s) added and ${result.deleted} deleted, from changes around the switch`,
    );
  }
  return result;
}

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
  const run = new Migration(deps, options.batchSize);
  reporter.info(
    `rolling back ${alias}: ${state.live.collection} → ${back.name}; carrying over what changed since ` +
      `${state.switchedAt}`,
  );
  const shared = new Set(state.shared);
  const pre = await run.carry({
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
  reporter.info(
    `switched ${alias} → ${back.name}; waiting ${Math.round(settleMs / 100) / 10} s for the API to follow ` +
      `before the last catch-up`,
  );
  await (deps.sleep ?? defaultSleep)(settleMs);
  const final = await finalCatchUp(run, deps, next, embedder, false);
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
    duration: Number(((performance.now() - clock) / 1000).toFixed(3)),
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
    duration: Number(((performance.now() - clock) / 1000).toFixed(3)),
  };
}
