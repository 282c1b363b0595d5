// The adapter follows the configuration: Qdrant when QDRANT_URL is set, the embedded store otherwise.
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { openEmbeddedStore } from './embedded/store.js';
import type { VectorStore } from './port.js';
import { createQdrantStore } from './qdrant.js';

export function openStore(config: Config, log: Log): VectorStore {
  return config.qdrantUrl
    ? createQdrantStore({ url: config.qdrantUrl, apiKey: config.qdrantApiKey })
    : openEmbeddedStore({ dataDir: config.dataDir, log: (message) => log.info(message) });
}
