// Process entry: read the configuration once, open the store and the model, build the app, listen,
// and shut down gracefully (finish requests, save the index, close the store) on SIGTERM/SIGINT.
import { buildApp } from './app.js';
import { Catalog, StartupError } from './catalog/catalog.js';
import { ImageFiles } from './catalog/image-files.js';
import { ConfigError, loadConfig } from './config.js';
import { ModelError } from './embedding/model.js';
import { ModelRegistry } from './embedding/registry.js';
import { openStore } from './store/open-store.js';
import { StoreUnavailableError } from './store/port.js';

/** Expected start-up failures: print the message (it says what to do), no stack trace. */
const EXPECTED = [ConfigError, ModelError, StartupError, StoreUnavailableError];

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await (async () => {
    const store = openStore(config, (message) => console.log(message));
    const models = new ModelRegistry(config.modelPath, {
      threads: config.onnxThreads,
      concurrency: config.embedConcurrency,
      queueMax: config.embedQueueMax,
      maxPixels: config.maxImagePixels,
    });
    try {
      const catalog = await Catalog.open({
        store,
        files: new ImageFiles(config.imageStorageDir),
        models,
        alias: config.collection,
        log: { info: (m) => console.log(m), warn: (m) => console.warn(m) },
      });
      const instance = await buildApp({
        config,
        catalog,
        storeKind: store.kind,
        logger: {
          level: config.logLevel,
          redact: ['req.headers["image-search-api-key"]', 'req.headers.authorization'],
        },
      });
      instance.addHook('onClose', async () => {
        await models.close();
        await store.close();
      });
      return instance;
    } catch (error) {
      await models.close();
      await store.close();
      throw error;
    }
  })();

  await app.listen({ port: config.port, host: config.host });
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (error) => {
        app.log.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (EXPECTED.some((type) => error instanceof type)) {
    console.error(`Cannot start: ${(error as Error).message}`);
  } else {
    console.error('Cannot start:', error);
  }
  process.exit(1);
});
