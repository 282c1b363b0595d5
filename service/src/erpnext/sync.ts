// The ERPNext sync: brings the catalog in line with ERPNext's Items (ERPNEXT_ITEM_FILTERS) and their images, run
// by `npm run ops -- sync`, by the API's scheduler (ERPNEXT_SYNC_INTERVAL) and, one item at a time, by webhooks.
//
// A run reads, in this order: every Item name (deletions and renames leave no `modified` to find them by), every
// image File attached to an Item (removing an attachment does not touch the Item either), and the catalog's own
// items; then the Items modified since the watermark (all of them on a full run), oldest change first, each
// reconciled as it arrives (reconcile.ts); then the Items that did not change but whose attachments differ from
// the catalog, and those whose images failed last time. An unchanged catalog costs those listings and nothing
// else: nothing is downloaded, embedded or written.
//
// The watermark (sync-state.ts) advances only over a contiguous prefix of finished Items, and is saved every few
// seconds, so a kill -9 at any point loses at most the work since the last save, which the next run redoes
// without duplicates (reconcile is idempotent; the catalog journals its own writes). The next run also looks
// OVERLAP_S back from the watermark, for rows whose transaction committed late. A full run happens at least
// every FULL_EVERY_MS, or with --full.
//
// One run at a time, across processes: a named lock file (lib/process-lock.ts) whose holder is released by the
// kernel however it ends. Each item is reconciled under its own cross-process lock, so a webhook and a run (or
// two processes) never interleave on one item, and each catalog write is locked per item like the API's.
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import { LOCKS_DIR } from '../catalog/image-files.js';
import { ServiceError } from '../errors.js';
import { NamedProcessLock, ProcessLocks } from '../lib/process-lock.js';
import type { Log } from '../log.js';
import { itemImageRefs, type ErpNextClient, type ErpNextFile } from './client.js';
import type { FrappeCondition } from './filters.js';
import {
  applyPlan,
  describePlan,
  hasWork,
  itemFieldsOf,
  noChange,
  planItem,
  refKey,
  type ItemChange,
  type ItemPlan,
  type WantedItem,
} from './reconcile.js';
import { frappeTimeMinus, readSyncState, syncStatePath, writeSyncState, type SyncState } from './sync-state.js';

/** What a run reports to: the ops CLI's Reporter, or the API's log. */
export interface SyncReporter extends Log {
  progress(label: string, total: number): { advance(n?: number): void; done(): void };
}

/** The last line of `ops sync`, and what the scheduler logs. */
export interface SyncSummary {
  items_added: number;
  items_updated: number;
  items_removed: number;
  images_added: number;
  images_removed: number;
  failed: number;
  duration_s: number;
}

/** Another sync holds the lock; the message names it. */
export class SyncBusyError extends Error {
  override name = 'SyncBusyError';
}

export interface ErpNextSyncOptions {
  client: ErpNextClient;
  catalog: Catalog;
  /** ERPNEXT_URL, recorded in the state (another site starts over). */
  url: string;
  filters: FrappeCondition[];
  /** IMAGE_STORAGE_DIR: the state and the lock files live there. */
  imageStorageDir: string;
  /** Items reconciled at once (default 4; embedding is the bottleneck, downloads overlap with it). */
  concurrency?: number;
  fullEveryMs?: number;
}

export interface RunOptions {
  reporter: SyncReporter;
  /** Plan and print, change nothing (no download, no write, no lock). */
  dryRun?: boolean;
  /** Re-read every Item, not only those modified since the last run. */
  full?: boolean;
  signal?: AbortSignal;
  /** Who runs it, for the message a refused second sync prints (e.g. "ops sync", "API scheduler"). */
  holder?: string;
  /** Remove items ERPNext does not list even when they are most of the catalog. */
  allowMassRemoval?: boolean;
}

export const FULL_EVERY_MS = 24 * 3600 * 1000;
const OVERLAP_S = 60;
const SAVE_EVERY_MS = 2000;
/** A run that would remove more than this share of the catalog's items (and more than the minimum) asks first. */
const MASS_REMOVAL_SHARE = 0.5;
const MASS_REMOVAL_MIN = 10;
/** A reconcile downloads and embeds a few images; another process waits this long for the same item. */
const RECONCILE_WAIT_MS = 10 * 60 * 1000;

export class ErpNextSync {
  private readonly lock: NamedProcessLock;
  private readonly itemLocks: ProcessLocks;
  private readonly stateFile: string;
  private readonly source: string;

  constructor(private readonly options: ErpNextSyncOptions) {
    const locks = path.join(options.imageStorageDir, LOCKS_DIR);
    this.lock = new NamedProcessLock(path.join(locks, 'erpnext-sync'));
    this.itemLocks = new ProcessLocks({ dir: locks, namespace: 'erpnext', waitMs: RECONCILE_WAIT_MS });
    this.stateFile = syncStatePath(options.imageStorageDir);
    this.source = JSON.stringify({ url: options.url, filters: options.filters });
  }

  /** One run; SyncBusyError when another one (in any process) is running. */
  async run(options: RunOptions): Promise<SyncSummary> {
    const { dryRun = false } = options;
    if (!dryRun && !(await this.lock.tryTake(options.holder ?? 'a sync'))) {
      const owner = await this.lock.owner();
      const who = owner ? ` (${owner.what}, pid ${owner.pid} on ${owner.host}, since ${owner.since})` : '';
      throw new SyncBusyError(
        `another ERPNext sync is running${who}; only one runs at a time: wait for it to finish and run this again`,
      );
    }
    try {
      return await this.runLocked(options);
    } finally {
      if (!dryRun) this.lock.release();
    }
  }

  /**
   * Reconciles one Item now (a webhook named it): read afresh from ERPNext, within ERPNEXT_ITEM_FILTERS, or
   * removed when ERPNext no longer has it there.
   */
  async reconcileOne(name: string, log: Log, signal?: AbortSignal): Promise<ItemChange> {
    const wanted = await this.wanted(name, undefined, signal);
    return this.reconcile(name, wanted, { reporter: log, signal, dryRun: false });
  }

  close(): void {
    this.lock.close();
    this.itemLocks.close();
  }

  // -------------------------------------------------------------------------------------------------------------

  private async runLocked(options: RunOptions): Promise<SyncSummary> {
    const { reporter, signal, dryRun = false } = options;
    const { client, filters } = this.options;
    const started = performance.now();
    const startedAt = new Date().toISOString();
    const previous = await readSyncState(this.stateFile, this.source);
    const full =
      options.full === true ||
      previous.watermark === null ||
      previous.last_full === null ||
      Date.now() - Date.parse(previous.last_full) >= (this.options.fullEveryMs ?? FULL_EVERY_MS);
    const scope = full ? 'full run' : `Items changed since ${previous.watermark}`;
    reporter.info(
      `ERPNext sync (${new URL(this.options.url).host}): ${scope}${dryRun ? ', dry run: nothing is changed' : ''}`,
    );

    const names = new Set(await client.listItemNames({ filters, signal }));
    const files = new Map<string, ErpNextFile[]>();
    for await (const file of client.listItemFiles({ signal })) {
      files.set(file.attachedToName, [...(files.get(file.attachedToName) ?? []), file]);
    }
    const held = await this.catalogRefs();

    const state: SyncState = { ...previous, retry: [...previous.retry] };
    const retry = new Set(previous.retry);
    const summary = { items_added: 0, items_updated: 0, items_removed: 0, images_added: 0, images_removed: 0 };
    let failed = 0;
    let savedAt = performance.now();
    const save = async (force = false) => {
      if (dryRun || (!force && performance.now() - savedAt < SAVE_EVERY_MS)) return;
      state.retry = [...retry];
      await writeSyncState(this.stateFile, state);
      savedAt = performance.now();
    };

    const gone = [...held.keys()].filter((itemId) => !names.has(itemId));
    const progress = reporter.progress('items', gone.length + (full ? names.size : 0));
    const reconcile = async (itemId: string, wanted: WantedItem | undefined) => {
      const change = await this.reconcile(itemId, wanted, { reporter, signal, dryRun });
      summary.items_added += Number(change.created);
      summary.items_updated += Number(change.updated);
      summary.items_removed += Number(change.removed);
      summary.images_added += change.imagesAdded;
      summary.images_removed += change.imagesRemoved;
      failed += change.failures.length;
      if (change.failures.length > 0) retry.add(itemId);
      else retry.delete(itemId);
      progress.advance();
    };
    const concurrency = this.options.concurrency ?? 4;

    try {
      // 1. Items ERPNext no longer lists (deleted, renamed, or outside ERPNEXT_ITEM_FILTERS now). Losing most of
      // the catalog at once is far more often a wrong ERPNEXT_URL or filter than a real clean-up: it waits for a
      // person to confirm.
      const massive = gone.length > MASS_REMOVAL_MIN && gone.length > held.size * MASS_REMOVAL_SHARE;
      if (massive && !options.allowMassRemoval) {
        reporter.warn(
          `${gone.length} of the ${held.size} items here are not among ERPNext's Items (ERPNEXT_URL ` +
            `${this.options.url}, ERPNEXT_ITEM_FILTERS), so none was removed: check both settings. If they are ` +
            'right, remove them with: npm run ops -- sync --allow-mass-removal',
        );
        failed += gone.length;
      } else {
        await forEachConcurrently(gone, concurrency, (itemId) => reconcile(itemId, undefined), signal);
      }

      // 2. Items changed since the watermark, oldest change first.
      const seen = new Set<string>();
      const changed = client.listItems({
        filters,
        modifiedSince: full || previous.watermark === null ? undefined : frappeTimeMinus(previous.watermark, OVERLAP_S),
        signal,
      });
      await forEachConcurrently(
        changed,
        concurrency,
        async (item) => {
          seen.add(item.name);
          await reconcile(item.name, this.wantedOf(item, files.get(item.name)));
        },
        signal,
        async (item) => {
          state.watermark = item.modified;
          await save();
        },
      );

      // 3. Unchanged Items whose attachments differ from the catalog, and last run's failures.
      const others = [...names].filter(
        (name) => !seen.has(name) && (retry.has(name) || this.differs(name, files, held)),
      );
      await forEachConcurrently(
        others,
        concurrency,
        async (name) => reconcile(name, await this.wanted(name, files.get(name) ?? [], signal)),
        signal,
      );
      if (full) state.last_full = startedAt;
    } finally {
      progress.done();
      await save(true);
    }
    return { ...summary, failed, duration_s: Math.round((performance.now() - started) / 10) / 100 };
  }

  /** The catalog's items, each with the URLs of its ERPNext images (keys, as refKey makes them). */
  private async catalogRefs(): Promise<Map<string, Set<string>>> {
    const held = new Map<string, Set<string>>();
    for await (const page of this.options.catalog.images()) {
      for (const image of page) {
        const refs = held.get(image.item_id) ?? new Set<string>();
        if (image.source === 'erpnext' && image.source_ref) refs.add(refKey(image.source_ref));
        held.set(image.item_id, refs);
      }
    }
    return held;
  }

  /**
   * Whether an Item that did not change has other image attachments than the catalog holds. URLs held here
   * that are ERPNext paths without a File row are gone (an Attach Image path always has its File row); an
   * outside URL can only be the Item's image field, which cannot change without changing the Item.
   */
  private differs(name: string, files: Map<string, ErpNextFile[]>, held: Map<string, Set<string>>): boolean {
    const attached = new Set((files.get(name) ?? []).map((file) => refKey(file.fileUrl)));
    const mine = held.get(name) ?? new Set<string>();
    if ([...attached].some((key) => !mine.has(key))) return true;
    return [...mine].some((key) => /^\/(private\/)?files\//.test(key) && !attached.has(key));
  }

  private wantedOf(item: Parameters<typeof itemFieldsOf>[0], files: ErpNextFile[] = []): WantedItem {
    return { fields: itemFieldsOf(item), images: itemImageRefs(item, files) };
  }

  /** An Item as ERPNext has it now (within the filters), or undefined when it does not. */
  private async wanted(name: string, files: ErpNextFile[] | undefined, signal?: AbortSignal) {
    const { client, filters } = this.options;
    for await (const item of client.listItems({ filters: [...filters, ['name', '=', name]], signal })) {
      const attached: ErpNextFile[] = [];
      if (files) attached.push(...files);
      else for await (const file of client.listItemFiles({ names: [name], signal })) attached.push(file);
      return this.wantedOf(item, attached);
    }
    return undefined;
  }

  private async reconcile(
    itemId: string,
    wanted: WantedItem | undefined,
    options: { reporter: Log; signal?: AbortSignal; dryRun: boolean },
  ): Promise<ItemChange> {
    const { catalog, client } = this.options;
    const { reporter, signal } = options;
    const current = async () => catalog.item(itemId).catch(ifUnknown);
    if (options.dryRun) {
      const images = await current();
      const plan = planItem(itemId, wanted, images);
      if (!hasWork(plan)) return noChange();
      reporter.info(`would ${describePlan(plan)}`);
      return predicted(plan, images.length);
    }
    return this.itemLocks.run(itemId, async () => {
      const plan = planItem(itemId, wanted, await current());
      if (!hasWork(plan)) return noChange();
      const change = await applyPlan(plan, {
        catalog,
        download: (url, abort) => client.fetchFile(url, { signal: abort }),
        signal,
      });
      for (const failure of change.failures) {
        reporter.warn(`Item ${JSON.stringify(failure.itemId)}: image ${failure.url} skipped: ${failure.reason}`);
      }
      return change;
    });
  }
}

/** What a plan would do, for a dry run (images that would fail cannot be known without downloading them). */
function predicted(plan: ItemPlan, held: number): ItemChange {
  const created = !plan.exists && plan.add.length > 0;
  return {
    created,
    updated: plan.exists && !plan.deleteItem,
    removed: plan.deleteItem,
    imagesAdded: plan.add.length,
    imagesRemoved: plan.deleteItem ? held : plan.remove.length,
    failures: [],
  };
}

const ifUnknown = (error: unknown) => {
  if (error instanceof ServiceError && error.code === 'item_not_found') return [];
  throw error;
};

/**
 * Runs `work` over `source` with at most `limit` items in flight, in the order they come. `settled` is called
 * with each item once it and every item before it have finished (the watermark's contiguous prefix). The first
 * failure stops taking new items and is thrown once those in flight have finished; so is an abort.
 */
export async function forEachConcurrently<T>(
  source: Iterable<T> | AsyncIterable<T>,
  limit: number,
  work: (item: T) => Promise<void>,
  signal?: AbortSignal,
  settled?: (item: T) => Promise<void>,
): Promise<void> {
  const iterator =
    Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<T>)[Symbol.iterator]();
  let started = 0;
  let next = 0;
  const finished = new Map<number, T>();
  let failure: { error: unknown } | undefined;
  let settling = Promise.resolve();
  const lane = async () => {
    while (!failure && !signal?.aborted) {
      let step: IteratorResult<T>;
      try {
        step = await iterator.next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (step.done) return;
      const index = started++;
      try {
        await work(step.value);
      } catch (error) {
        failure ??= { error };
        return;
      }
      finished.set(index, step.value);
      while (finished.has(next)) {
        const item = finished.get(next)!;
        finished.delete(next++);
        if (settled) settling = settling.then(() => settled(item));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  await settling;
  if (failure || signal?.aborted) await iterator.return?.(undefined);
  if (failure) throw failure.error;
  signal?.throwIfAborted();
}
