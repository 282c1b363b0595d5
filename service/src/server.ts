// Process entry: read the configuration once, build the one logger, get the model (downloading it on a
// first start), open the store and the model, build the app and listen. On SIGTERM/SIGINT it stops taking
// requests, lets those in progress finish within SHUTDOWN_TIMEOUT_MS, saves the index and closes the store.
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { StartupError } from './catalog/catalog.js';
import { ConfigError, loadConfig } from './config.js';
import { ensureDefaultModel } from './embedding/checkpoint/convert.js';
import { ModelError } from './embedding/model.js';
import { createLogger, type Logger } from './log.js';
import { openService } from './service.js';
import { SchemaError } from './store/embedded/schema.js';
import { StoreUnavailableError } from './store/port.js';

/** Expected start-up failures: log the message (it says what to do), no stack trace. */
const EXPECTED = [ConfigError, ModelError, StartupError, StoreUnavailableError, SchemaError];

async function main(log: Logger): Promise<void> {
  const config = loadConfig();
  log.level = config.logLevel;
  const secrets = [
    config.apiKey,
    config.readKey,
    config.qdrantApiKey,
    config.erpnextApiKey,
    config.erpnextApiSecret,
    config.erpnextWebhookSecret,
    ...Object.values(config.urlHeaders),
  ];
  const root = createLogger({ level: config.logLevel, secrets });
  await ensureDefaultModel(config.modelPath, { log: root.child({ component: 'model' }) });
  const service = await openService(config, root);
  const { catalog, store, models } = service;
  const app = await buildApp({ config, catalog, storeKind: store.kind, models, logger: root }).catch(
    async (error: unknown) => {
      await service.close();
      throw error;
    },
  );
  app.addHook('onClose', () => service.close());
  await app.listen({ port: config.port, host: config.host });
  if (!config.apiKey && !config.readKey && config.host === '127.0.0.1') {
    root.warn('No API key is set, so the API listens on 127.0.0.1 only. Set HOST=0.0.0.0 to open it to the network.');
  }
  closeWithGrace({ delay: config.shutdownTimeoutMs }, async ({ signal, err }) => {
    if (err) root.error({ err }, 'shutting down after an uncaught error');
    else root.info({ signal }, 'shutting down');
    await app.close();
  });
}

// Until the configuration is read, only the level is unknown: start at info.
const bootLog = createLogger({ level: 'info' });
main(bootLog).catch((error: unknown) => {
  if (EXPECTED.some((type) => error instanceof type)) bootLog.fatal(`Cannot start: ${(error as Error).message}`);
  else bootLog.fatal({ err: error }, 'Cannot start');
  process.exitCode = 1;
});
