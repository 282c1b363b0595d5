// A backup onto a full disk fails with a clear error and leaves no partial backup behind; once space is
// freed the next run succeeds (a real size-limited tmpfs as BACKUP_DIR).
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runBackup } from '../../scripts/backup.js';
import { ImageFiles } from '../../service/src/catalog/image-files.js';
import { storeBackup } from '../../service/src/store/open-store.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../support/tmpfs.js';
import { ingest, picture, recordingReporter } from './helpers.js';

let t: TestApp | undefined;
let mount: Tmpfs | undefined;
afterEach(async () => {
  await t?.close();
  mount?.unmount();
});

describe.skipIf(tmpfsUnavailable !== undefined)('ops backup on a full disk', () => {
  it('fails saying the disk is full, leaves nothing partial, and works after space is freed', async () => {
    t = await startTestApp();
    for (let i = 1; i <= 6; i++) await ingest(t, `SKU-${i}`, await picture(i));
    mount = mountTmpfs(64);
    const deps = {
      store: t.store,
      files: new ImageFiles(t.config.imageStorageDir),
      alias: 'items',
      backupDir: mount.dir,
      keep: 2,
      reporter: recordingReporter(),
      backup: storeBackup(t.config, t.store, { info: () => {}, warn: () => {} }),
    };
    const failure = await runBackup(deps).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/that disk is full; free space there or set BACKUP_DIR/);
    expect(readdirSync(mount.dir).filter((entry) => !entry.startsWith('.ops'))).toEqual([]);
    mount.resize(16 * 1024);
    const summary = await runBackup(deps);
    expect(summary).toMatchObject({ points: 6, images: 6 });
  });
});
