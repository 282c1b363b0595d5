// Process entry: read the configuration once, open the store and the model, build the app, listen,
// and shut down gracefully (finish requests, save the index, close the store) on SIGTERM/SIGINT.
import { buildApp } from './app.js';
import { StartupError } from './catalog/catalog.js';
import { ConfigError, loadConfig } from './config.js';
import { ensureDefaultModel } from './embedding/checkpoint/convert.js';
import { ModelError } from './embedding/model.js';
import { openService } from './service.js';
import { StoreUnavailableError } from './store/port.js';

/** Expected start-up failures: print the message (it says what to do), no stack trace. */
const EXPECTED = [ConfigError, ModelError, StartupError, StoreUnavailableError];

/* eslint-disable no-console -- replaced by the pino root logger (groundwork issue) */
async function main(): Promise<void> {
  const config = loadConfig();
  await ensureDefaultModel(config.modelPath, { log: { info: (m) => console.log(m) } });
  const service = await openService(config, { info: (m) => console.log(m), warn: (m) => console.warn(m) });
  const app = await buildApp({
    config,
    catalog: service.catalog,
    storeKind: service.store.kind,
    logger: { level: config.logLevel, redact: ['req.headers["image-search-api-key"]', 'req.headers.authorization'] },
  }).catch(async (error: unknown) => {
    await service.close();
    throw error;
  });
  app.addHook('onClose', () => service.close());
  await app.listen({ port: config.port, host: config.host });

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(EXPECTED.some((type) => error instanceof type) ? `Cannot start: ${(error as Error).message}` : error);
  process.exit(1);
});
