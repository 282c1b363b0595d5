// The ERPNext connector built from the configuration, once, for the process that needs it: the API (sync,
// webhook queue, scheduler) and `ops sync` (sync only). Without ERPNEXT_URL and its key pair: no connector at all.
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { ErpNextClient, type ErpNextClientOptions } from './client.js';
import { SyncScheduler } from './scheduler.js';
import { ErpNextSync, type SyncReporter } from './sync.js';
import { ItemQueue } from './webhook.js';

export interface ErpNext {
  sync: ErpNextSync;
  /** Present when ERPNEXT_WEBHOOK_SECRET is set. */
  webhooks?: { secret: string; queue: ItemQueue };
  /** Present when ERPNEXT_SYNC_INTERVAL is not 0. */
  scheduler?: SyncScheduler;
  close(): Promise<void>;
}

export interface ErpNextOverrides {
  /** Client settings for tests (fast retries, DNS stub). */
  client?: Partial<ErpNextClientOptions>;
  /** Delay of the scheduler's first run (default: the interval, at most 10 s). */
  firstSyncDelayMs?: number;
}

export function erpNextClient(config: Config, log: Log, overrides: Partial<ErpNextClientOptions> = {}) {
  return new ErpNextClient({
    url: config.erpnextUrl!,
    apiKey: config.erpnextApiKey!,
    apiSecret: config.erpnextApiSecret!,
    maxFileBytes: config.maxImageBytes,
    logger: { info: (m) => log.info(m), warn: (m) => log.warn(m), debug: debugOf(log) },
    ...overrides,
  });
}

/** The connector's sync, for a process that only syncs (ops). */
export function erpNextSync(config: Config, catalog: Catalog, log: Log, overrides: ErpNextOverrides = {}) {
  return new ErpNextSync({
    client: erpNextClient(config, log, overrides.client),
    catalog,
    url: config.erpnextUrl!,
    filters: config.erpnextItemFilters ?? [],
    imageStorageDir: config.imageStorageDir,
    // Downloads overlap with embedding; more items in flight than embedding slots keeps them busy.
    concurrency: Math.max(2, config.embedConcurrency * 2),
  });
}

/** Whether the configuration turns the sync on (ERPNEXT_URL alone only links the staff page to ERPNext). */
export const erpNextSyncConfigured = (config: Config) =>
  !!(config.erpnextUrl && config.erpnextApiKey && config.erpnextApiSecret);

/** The API's connector, or undefined when the sync is not configured. */
export function openErpNext(
  config: Config,
  catalog: Catalog,
  log: Log,
  overrides: ErpNextOverrides = {},
): ErpNext | undefined {
  if (!erpNextSyncConfigured(config)) return undefined;
  const sync = erpNextSync(config, catalog, log, overrides);
  const secret = config.erpnextWebhookSecret;
  const queue = secret
    ? new ItemQueue(async (name, signal) => void (await sync.reconcileOne(name, log, signal)), log)
    : undefined;
  const reporter = logReporter(log);
  const scheduler =
    config.erpnextSyncInterval > 0
      ? new SyncScheduler(
          (signal) => sync.run({ reporter, signal, holder: 'the API scheduler' }),
          log,
          config.erpnextSyncInterval,
          overrides.firstSyncDelayMs,
        )
      : undefined;
  return {
    sync,
    webhooks: secret && queue ? { secret, queue } : undefined,
    scheduler,
    async close() {
      await Promise.all([scheduler?.stop(), queue?.close()]);
      sync.close();
    },
  };
}

const debugOf = (log: Log) => {
  const debug = (log as Partial<{ debug(message: string): void }>).debug;
  return typeof debug === 'function' ? (message: string) => debug.call(log, message) : () => {};
};

/** A sync reporter over a log: progress as a line every 30 s and one at the end. */
export function logReporter(log: Log, everyMs = 30_000): SyncReporter {
  return {
    info: (message) => log.info(message),
    warn: (message) => log.warn(message),
    progress(label, total) {
      let count = 0;
      let last = Date.now();
      return {
        advance(n = 1) {
          count += n;
          if (Date.now() - last < everyMs) return;
          last = Date.now();
          log.info(`ERPNext sync: ${count}${count <= total ? ` of ${total}` : ''} ${label} done`);
        },
        done: () => log.info(`ERPNext sync: ${count} ${label} reconciled`),
      };
    },
  };
}
