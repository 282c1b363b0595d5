// When may a test use a real Qdrant? Only when QDRANT_URL names one on loopback (tests never reach other
// addresses). Otherwise the reason, for the skipped suite to print.
import { QDRANT_VERSION } from './qdrant-openapi.js';

export function realQdrantSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const how = `run \`docker run -p 6333:6333 qdrant/qdrant:v${QDRANT_VERSION}\` and set QDRANT_URL=http://127.0.0.1:6333`;
  const raw = env.QDRANT_URL;
  if (!raw) return `QDRANT_URL is unset and no Qdrant binary can run on this machine; to run it elsewhere, ${how}`;
  let host: string;
  try {
    host = new URL(raw).hostname;
  } catch {
    return `QDRANT_URL=${raw} is not a URL; ${how}`;
  }
  if (!['localhost', '[::1]'].includes(host) && !host.startsWith('127.')) {
    return `QDRANT_URL=${raw} is not a loopback address and tests may only reach loopback; ${how}`;
  }
  return undefined;
}
