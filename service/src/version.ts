// The service's version, read once from package.json (shown in the OpenAPI document and /ready).
import { readFileSync } from 'node:fs';

const packageJson = new URL('../../package.json', import.meta.url);
// Compiled code lives one level deeper (dist/service/src), where package.json is copied beside dist/.
const candidates = [packageJson, new URL('../../../package.json', import.meta.url)];

function readVersion(): string {
  for (const file of candidates) {
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
