// The port's contract (test/support/store-contract.ts), run against the embedded adapter on a temp dir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openEmbeddedStore } from '../../../service/src/store/embedded/store.js';
import { describeStoreContract } from '../../support/store-contract.js';

describeStoreContract('embedded store', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'embedded-contract-'));
  const store = openEmbeddedStore({ dataDir: dir });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
