// Opens what a running service needs (store, models, catalog) from the configuration, and closes it
// again. Shared by the HTTP server, the operations commands that write items, the evaluation command and
// the tests. Item writes are locked across processes (IMAGE_STORAGE_DIR/.locks), so an `ops sync` process
// and the API never write one item at the same time.
import path from 'node:path';
import { Catalog } from './catalog/catalog.js';
import { ImageFiles, LOCKS_DIR } from './catalog/image-files.js';
import type { Config } from './config.js';
import { ModelRegistry } from './embedding/registry.js';
import { retryLater } from './errors.js';
import { ProcessLocks } from './lib/process-lock.js';
import { componentLog, type Log } from './log.js';
import { openStore } from './store/open-store.js';
import type { VectorStore } from './store/port.js';

export interface Service {
  store: VectorStore;
  models: ModelRegistry;
  catalog: Catalog;
  /** The cross-process item locks the catalog writes under. */
  itemLocks: ProcessLocks;
  close(): Promise<void>;
}

export async function openService(
  config: Config,
  log: Log,
  store: VectorStore = openStore(config, componentLog(log, 'store')),
  options: { warmIndex?: boolean } = {},
): Promise<Service> {
  const models = new ModelRegistry(config.modelPath, {
    threads: config.onnxThreads,
    concurrency: config.embedConcurrency,
    queueMax: config.embedQueueMax,
    maxPixels: config.maxImagePixels,
  });
  const itemLocks = new ProcessLocks({
    dir: path.join(config.imageStorageDir, LOCKS_DIR),
    namespace: 'item',
    // Only a process frozen in the middle of a write holds an item that long: the caller may retry.
    timeoutError: (message) => retryLater('store_unavailable', `${message}.`, 5),
  });
  const close = async () => {
    await models.close();
    await store.close();
    itemLocks.close();
  };
  try {
    const catalog = await Catalog.open({
      store,
      files: new ImageFiles(config.imageStorageDir),
      models,
      alias: config.collection,
      log: componentLog(log, 'catalog'),
      searchZoom: config.searchZoom,
      itemLock: itemLocks,
      warmIndex: options.warmIndex,
    });
    return { store, models, catalog, itemLocks, close };
  } catch (error) {
    await close();
    throw error;
  }
}
