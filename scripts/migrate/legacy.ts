// Legacy data: QDRANT_COLLECTION naming a plain collection (made before aliases were used). An alias of
// the same name cannot exist beside it, so the collection is copied as it is to <alias>_<model>_<dim> (the
// rollback target), deleted, and the alias created right after. Between those two requests (milliseconds)
// the API finds no collection and answers 503, and for up to a second after it, until it notices the new
// model, requests can fail; writes that reach the plain collection after its last copy pass are lost.
// Pause ingests (or stop the API) for this one-time conversion.
import { collectionNameFor, type CollectionInfo } from '../../service/src/store/port.js';
import type { Carrier, CarryPlan, CarryResult } from './carry.js';
import { collectionInfo, ensureCollection } from './collections.js';
import { writeMigrationState, type CollectionRef, type MigrationState } from './state.js';
import type { MigrateDeps } from './types.js';

/**
 * A conversion that stopped between deleting the plain collection and creating the alias leaves no
 * `alias` at all: point it at the collection the record names. Returns whether it did.
 */
export async function reattachAlias(deps: MigrateDeps, state: MigrationState | undefined): Promise<boolean> {
  const { store, alias, reporter } = deps;
  if (!state?.legacy || !(await collectionInfo(store, state.live.collection))) return false;
  reporter.warn(
    `${alias} is missing after an interrupted conversion; pointing it at ${state.live.collection} as recorded`,
  );
  await store.setAlias(alias, state.live.collection);
  return true;
}

export interface LegacySwitch {
  carrier: Carrier;
  /** The plain collection (named like the alias). */
  live: CollectionInfo;
  /** The model that made its vectors. */
  legacyModel: string;
  /** The re-embedded collection the alias will point at. */
  target: string;
  /** A carry pass from the plain collection into the target. */
  mirror: (label: string) => CarryPlan;
  /** Reports points that could not be read, and stops unless they may be left out. */
  gateMissing: (pass: CarryResult) => void;
  /** The record of the switch, from the last carry pass into the target. */
  record: (previous: CollectionRef, last: CarryResult) => MigrationState;
}

/** Copies the plain collection for rollback, catches up once more, and replaces it by the alias. */
export async function switchFromLegacy(work: LegacySwitch): Promise<{ last: CarryResult; previous: CollectionRef }> {
  const { carrier, live, legacyModel, target } = work;
  const { store, reporter, alias, backupDir } = carrier.deps;
  const copyName = collectionNameFor(alias, legacyModel, live.dim);
  // The plain collection's model is known by name only (--legacy-model or its metadata), so is its copy.
  const sha256 = live.modelSha256 ?? undefined;
  await ensureCollection(store, reporter, copyName, { name: legacyModel, dim: live.dim, sha256 });
  const source = store.collection(live.name);
  const copy = store.collection(copyName);
  const copyPlan = (label: string): CarryPlan => ({
    label,
    source,
    target: copy,
    targetModel: legacyModel,
    shouldDelete: () => true,
  });
  await carrier.carry(copyPlan(`copying ${alias} → ${copyName} (kept for rollback)`));
  // From here on as close together as possible: catch up, copy the rest, swap collection for alias.
  const last = await carrier.carry(work.mirror('catching up'));
  work.gateMissing(last);
  const previous: CollectionRef = { collection: copyName, model: legacyModel, dim: live.dim };
  await carrier.carry(copyPlan('copying the rest'));
  await writeMigrationState(backupDir, { ...work.record(previous, last), legacy: true });
  reporter.warn(`replacing the plain collection ${alias} by an alias: requests in the next moment may fail`);
  await store.deleteCollection(alias);
  await store.setAlias(alias, target);
  return { last, previous };
}
