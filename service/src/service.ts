// Opens what a running service needs (store, models, catalog) from the configuration, and closes it
// again. Shared by the HTTP server, the evaluation command and the tests.
import { Catalog } from './catalog/catalog.js';
import { ImageFiles } from './catalog/image-files.js';
import type { Config } from './config.js';
import { ModelRegistry } from './embedding/registry.js';
import { componentLog, type Log } from './log.js';
import { openStore } from './store/open-store.js';
import type { VectorStore } from './store/port.js';

export interface Service {
  store: VectorStore;
  models: ModelRegistry;
  catalog: Catalog;
  close(): Promise<void>;
}

export async function openService(
  config: Config,
  log: Log,
  store: VectorStore = openStore(config, componentLog(log, 'store')),
): Promise<Service> {
  const models = new ModelRegistry(config.modelPath, {
    threads: config.onnxThreads,
    concurrency: config.embedConcurrency,
    queueMax: config.embedQueueMax,
    maxPixels: config.maxImagePixels,
  });
  const close = async () => {
    await models.close();
    await store.close();
  };
  try {
    const catalog = await Catalog.open({
      store,
      files: new ImageFiles(config.imageStorageDir),
      models,
      alias: config.collection,
      log: componentLog(log, 'catalog'),
      searchZoom: config.searchZoom,
    });
    return { store, models, catalog, close };
  } catch (error) {
    await close();
    throw error;
  }
}
