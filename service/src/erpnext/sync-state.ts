// How far the ERPNext sync has got: one small JSON file at the top of the image directory
// (IMAGE_STORAGE_DIR/.erpnext-sync.json), read by whichever process syncs (the API's scheduler or `ops sync`)
// and written only by the holder of the sync lock, always whole (temp file, fsync, rename), so a kill -9 leaves
// the previous state or the next one, never a mix. Its place is deliberate: emptying the catalog
// (DELETE /items) removes it with the images, and the next sync starts over with a full run.
import path from 'node:path';
import { isNotFound, readJson, writeJsonAtomic } from '../lib/files.js';

export const SYNC_STATE_FILE = '.erpnext-sync.json';

export interface SyncState {
  version: 1;
  /** The site and filters this state belongs to; another site or other filters start over. */
  source: string;
  /** Every Item modified at or before this Frappe timestamp has been reconciled (failures are in `retry`). */
  watermark: string | null;
  /** When the last full run finished (ISO-8601). */
  last_full: string | null;
  /** Items that had an image fail: the next run reconciles them again, whether they changed or not. */
  retry: string[];
}

export const syncStatePath = (imageStorageDir: string) => path.join(imageStorageDir, SYNC_STATE_FILE);

const fresh = (source: string): SyncState => ({ version: 1, source, watermark: null, last_full: null, retry: [] });

/** The state of `source`; a fresh one when there is none, it is unreadable, or it belongs to another source. */
export async function readSyncState(file: string, source: string): Promise<SyncState> {
  let stored: Partial<SyncState>;
  try {
    stored = await readJson<Partial<SyncState>>(file);
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return fresh(source);
    throw error;
  }
  if (stored?.version !== 1 || stored.source !== source) return fresh(source);
  return {
    ...fresh(source),
    watermark: typeof stored.watermark === 'string' ? stored.watermark : null,
    last_full: typeof stored.last_full === 'string' ? stored.last_full : null,
    retry: Array.isArray(stored.retry) ? stored.retry.filter((name) => typeof name === 'string') : [],
  };
}

export function writeSyncState(file: string, state: SyncState): Promise<void> {
  return writeJsonAtomic(file, state);
}

/** A Frappe timestamp (`YYYY-MM-DD HH:MM:SS[.ffffff]`, site time) moved back by `seconds`, in the same form. */
export function frappeTimeMinus(timestamp: string, seconds: number): string {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d{1,6})?$/.exec(timestamp);
  if (!match) return timestamp; // not Frappe's form: use it as it is (the comparison is ERPNext's)
  const [, date, time, fraction = ''] = match;
  const moved = new Date(Date.parse(`${date}T${time}Z`) - seconds * 1000).toISOString();
  return `${moved.slice(0, 10)} ${moved.slice(11, 19)}${fraction}`;
}
