// The adapter follows the configuration: Qdrant when QDRANT_URL is set, the embedded store otherwise.
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { openEmbeddedStore } from './embedded/store.js';
import { EmbeddedBackup } from './embedded/backup.js';
import type { StoreBackup, VectorStore } from './port.js';
import { QdrantBackup } from './qdrant/backup.js';
import { createQdrantStore, QdrantStore } from './qdrant/store.js';

export function openStore(config: Config, log: Log): VectorStore {
  return config.qdrantUrl
    ? createQdrantStore({ url: config.qdrantUrl, apiKey: config.qdrantApiKey })
    : openEmbeddedStore({ dataDir: config.dataDir, log: (message) => log.info(message) });
}

/**
 * The backup capability of the configured store. Qdrant's works through the open store (its client);
 * the embedded one works on the data directory, since a restore must replace the database while no store
 * has it open.
 */
export function storeBackup(config: Config, store: VectorStore | undefined, log: Log): StoreBackup {
  if (!config.qdrantUrl) return new EmbeddedBackup(config.dataDir);
  if (!(store instanceof QdrantStore)) throw new Error('the Qdrant backup needs the open Qdrant store');
  return new QdrantBackup(store, { url: config.qdrantUrl, apiKey: config.qdrantApiKey, log: (m) => log.info(m) });
}
