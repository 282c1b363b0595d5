// One ERPNext Item against the catalog: what ERPNext says the item is (its fields and image URLs) compared with
// what the catalog holds (its images, each with `source` and `source_ref`), and the difference applied through
// the catalog's use cases only. Every step can be repeated: the same URL is never added twice, the same bytes
// give the existing image, a field is written only when it differs, so a second pass over an unchanged item
// downloads, embeds and writes nothing.
// - Images from ERPNext carry source 'erpnext', kind 'catalog' and source_ref = the URL as ERPNext stores it.
//   Images that staff added through the API (source 'api') are never removed here; only deleting the item in
//   ERPNext (or leaving ERPNEXT_ITEM_FILTERS) removes them, with the item.
// - Order: fields first (new images copy the item's fields), then new images, then removed ones, so an item
//   whose picture is replaced never disappears in between.
// - An image that cannot be had (ERPNext answers 404, the file is too large, not an image, broken) is a
//   failure of that image only: reported and skipped. Anything else (the store is down, the disk is full)
//   stops the caller.
import type { Catalog, Stored } from '../catalog/catalog.js';
import { ServiceError } from '../errors.js';
import type { ImageRecord, ItemFields, ItemUpdate } from '../schemas/records.js';
import { ITEM_FIELDS } from '../schemas/records.js';
import type { ErpNextItem, ItemImageRef } from './client.js';
import { ErpNextError } from './errors.js';

/** The item as ERPNext has it. */
export interface WantedItem {
  fields: ItemFields;
  images: ItemImageRef[];
}

/** The difference between ERPNext and the catalog for one item. */
export interface ItemPlan {
  itemId: string;
  /** Undefined: the item is not (or no longer) in ERPNext's synced set. */
  wanted?: WantedItem;
  /** The catalog has images of the item. */
  exists: boolean;
  /** Remove the item and every image it has (deleted in ERPNext). */
  deleteItem: boolean;
  patch: ItemUpdate;
  add: ItemImageRef[];
  remove: ImageRecord[];
}

export interface ImageFailure {
  itemId: string;
  url: string;
  reason: string;
}

/** What applying a plan did. */
export interface ItemChange {
  created: boolean;
  updated: boolean;
  removed: boolean;
  imagesAdded: number;
  imagesRemoved: number;
  failures: ImageFailure[];
}

/** The catalog's fields of an ERPNext Item (the client keeps Frappe's values, named for TypeScript). */
export function itemFieldsOf(item: ErpNextItem): ItemFields {
  return {
    item_id: item.name,
    item_name: item.itemName,
    item_code: item.itemCode,
    item_group: item.itemGroup,
    brand: item.brand,
    disabled: item.disabled,
  };
}

/** A file URL without its query (a private file's `?fid=` may come and go): how URLs are compared. */
export const refKey = (url: string) => url.split(/[?#]/, 1)[0];

export function planItem(itemId: string, wanted: WantedItem | undefined, current: readonly ImageRecord[]): ItemPlan {
  const exists = current.length > 0;
  const plan: ItemPlan = { itemId, wanted, exists, deleteItem: false, patch: {}, add: [], remove: [] };
  if (!wanted) {
    plan.deleteItem = exists;
    return plan;
  }
  if (exists) {
    const first = current[0];
    for (const field of ITEM_FIELDS) {
      if (field !== 'item_id' && first[field] !== wanted.fields[field]) {
        (plan.patch as Record<string, unknown>)[field] = wanted.fields[field];
      }
    }
  }
  const wantedKeys = new Set(wanted.images.map((image) => refKey(image.url)));
  const held = new Set<string>();
  for (const image of current) {
    if (image.source !== 'erpnext') continue;
    const key = refKey(image.source_ref ?? '');
    // Gone from ERPNext, or a second copy of one URL (the file changed behind the same URL): removed.
    if (!wantedKeys.has(key) || held.has(key)) plan.remove.push(image);
    held.add(key);
  }
  plan.add = wanted.images.filter((image) => !held.has(refKey(image.url)));
  return plan;
}

export const hasWork = (plan: ItemPlan) =>
  plan.deleteItem || Object.keys(plan.patch).length > 0 || plan.add.length > 0 || plan.remove.length > 0;

/** What a plan changes, as a verb phrase ("add item "X" with 2 image(s)"), for --dry-run and logs. */
export function describePlan(plan: ItemPlan): string {
  const id = JSON.stringify(plan.itemId);
  if (plan.deleteItem) return `remove item ${id} and its images`;
  if (!plan.exists) return `add item ${id} with ${plan.add.length} image(s)`;
  const parts: string[] = [];
  const fields = Object.keys(plan.patch);
  if (fields.length > 0) parts.push(`update ${fields.join(', ')}`);
  if (plan.add.length > 0) parts.push(`add ${plan.add.length} image(s)`);
  if (plan.remove.length > 0) parts.push(`remove ${plan.remove.length} image(s)`);
  return `change item ${id}: ${parts.join(', ')}`;
}

/** Catalog errors that concern the image, not the service: the image is skipped. */
const IMAGE_ERRORS = new Set(['empty_image', 'image_too_large', 'unsupported_image', 'image_unreadable']);

export interface ApplyDeps {
  catalog: Catalog;
  /** The bytes of an image URL (ErpNextClient.fetchFile). */
  download(url: string, signal?: AbortSignal): Promise<Buffer>;
  signal?: AbortSignal;
}

/** A change that changed nothing (each caller gets its own, to fill in). */
export const noChange = (): ItemChange => ({
  created: false,
  updated: false,
  removed: false,
  imagesAdded: 0,
  imagesRemoved: 0,
  failures: [],
});

export async function applyPlan(plan: ItemPlan, deps: ApplyDeps): Promise<ItemChange> {
  const { catalog, signal } = deps;
  const change = noChange();
  const { itemId, wanted } = plan;
  if (plan.deleteItem || !wanted) {
    if (!plan.deleteItem) return change;
    const removed = await ignoring('item_not_found', () => catalog.deleteItem(itemId));
    change.removed = removed !== undefined;
    change.imagesRemoved = removed?.length ?? 0;
    return change;
  }
  let exists = plan.exists;
  if (exists && Object.keys(plan.patch).length > 0) {
    const updated = await ignoring('item_not_found', () => catalog.updateItem(itemId, plan.patch));
    exists = updated !== undefined;
    change.updated = exists;
  }
  for (const ref of plan.add) {
    const image = { kind: 'catalog' as const, source: 'erpnext' as const, source_ref: ref.url };
    let stored: Stored;
    try {
      const bytes = await deps.download(ref.url, signal);
      stored = await store(catalog, exists, wanted.fields, bytes, image, signal);
    } catch (error) {
      if (signal?.aborted || !isImageFailure(error)) throw error;
      change.failures.push({ itemId, url: ref.url, reason: (error as Error).message });
      continue;
    }
    if (stored.created) {
      change.imagesAdded++;
      if (!exists) change.created = true;
    }
    exists = true;
  }
  for (const image of plan.remove) {
    const removed = await ignoring('image_not_found', () => catalog.deleteImage(itemId, image.image_id));
    if (removed) change.imagesRemoved++;
  }
  change.updated = !change.created && (change.updated || change.imagesAdded > 0 || change.imagesRemoved > 0);
  return change;
}

/** Attempts at an image while the embedding queue is full (API traffic has priority; the sync waits). */
const BUSY_ATTEMPTS = 120;

/**
 * Adds to the item, or creates it; follows the catalog when another writer created or deleted it meanwhile,
 * and waits (Retry-After) while the embedding queue is full.
 */
async function store(
  catalog: Catalog,
  exists: boolean,
  fields: ItemFields,
  bytes: Buffer,
  image: { kind: 'catalog'; source: 'erpnext'; source_ref: string },
  signal?: AbortSignal,
): Promise<Stored> {
  let raced = false;
  for (let busy = 0; ;) {
    try {
      return exists ? await catalog.addImage(fields.item_id, bytes, image) : await catalog.ingest(fields, bytes, image);
    } catch (error) {
      const code = error instanceof ServiceError ? error.code : undefined;
      if (code === 'busy' && ++busy < BUSY_ATTEMPTS && !signal?.aborted) {
        await sleep(1000 * Number((error as ServiceError).headers['retry-after'] ?? 1));
        continue;
      }
      const lost = (exists && code === 'item_not_found') || (!exists && code === 'item_exists');
      if (!lost || raced) throw error;
      raced = true;
      exists = !exists;
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isImageFailure(error: unknown): boolean {
  if (error instanceof ErpNextError) return true;
  return error instanceof ServiceError && IMAGE_ERRORS.has(error.code);
}

/** The result of `work`, or undefined when it fails with the ServiceError `code` (someone else did it already). */
async function ignoring<T>(code: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ServiceError && error.code === code) return undefined;
    throw error;
  }
}
