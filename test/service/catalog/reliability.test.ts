// The catalog under the faults a busy shop produces: a wipe racing ingests, deletes interrupted by a crash,
// and a full disk. After each, files and points must agree (the `ops check` consistency check), nothing
// acknowledged may be lost, and the answer must be a 4xx/5xx with a stable code, never a 500.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkConsistency } from '../../../scripts/consistency.js';
import { Catalog } from '../../../service/src/catalog/catalog.js';
import { ImageFiles } from '../../../service/src/catalog/image-files.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';
import * as images from '../../support/images.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../../support/tmpfs.js';
import { recordingReporter } from '../../scripts/helpers.js';

const apps: TestApp[] = [];
const mounts: Tmpfs[] = [];
afterEach(async () => {
  for (const t of apps.splice(0)) await t.close();
  for (const mount of mounts.splice(0)) mount.unmount();
});

async function start(env: Record<string, string> = {}) {
  const t = await startTestApp({ env });
  apps.push(t);
  return t;
}

const ingest = async (t: TestApp, itemId: string, bytes: Buffer) =>
  t.app.inject({ method: 'POST', url: '/ingest', ...(await multipart({ item_id: itemId }, { bytes })) });

async function consistent(t: TestApp) {
  const report = await checkConsistency({
    store: t.store,
    files: new ImageFiles(t.config.imageStorageDir),
    alias: t.config.collection,
    reporter: recordingReporter(),
  });
  return {
    ok: report.ok,
    pointsWithoutFile: report.pointsWithoutFile.length,
    filesWithoutPoint: report.filesWithoutPoint,
  };
}

describe('DELETE /items racing ingests', () => {
  it('never answers 500 and leaves files and points consistent, round after round', { timeout: 180_000 }, async () => {
    const t = await start({ EMBED_QUEUE_MAX: '64' });
    const photos = await Promise.all(Array.from({ length: 12 }, (_, i) => images.jpeg(160, 120, i + 1)));
    for (let round = 0; round < 40; round++) {
      const ingests = photos.map((bytes, i) => ingest(t, `r${round}-item${i}`, bytes));
      // The wipe lands somewhere among the ingests: some before it (wiped), some after (kept).
      const wipe = new Promise((resolve) => setTimeout(resolve, round % 7)).then(() =>
        t.app.inject({ method: 'DELETE', url: '/items' }),
      );
      const answers = await Promise.all([...ingests, wipe]);
      for (const answer of answers) expect([200, 201], answer.body).toContain(answer.statusCode);
      expect(await consistent(t)).toEqual({ ok: true, pointsWithoutFile: 0, filesWithoutPoint: [] });
      // Every ingest acknowledged after the wipe began is still there; those before are gone with it.
      const kept = await t.store.collection(t.config.collection).count();
      expect(kept).toBeLessThanOrEqual(12);
    }
  });
});

describe('deletes interrupted by a crash', () => {
  it('an item delete cut off after its points went is finished at the next start: no orphan file', async () => {
    const t = await start();
    for (let i = 0; i < 3; i++)
      expect((await ingest(t, `item${i}`, await images.jpeg(120, 90, i))).statusCode).toBe(201);
    const collection = t.store.collection(t.config.collection);
    const victims = await collection.itemImages('item1');
    // What a kill -9 between "points deleted" and "files deleted" leaves behind:
    const files = new ImageFiles(t.config.imageStorageDir);
    await files.beginDelete({ op: 'delete-images', images: victims.map(({ image_id, file }) => ({ image_id, file })) });
    await collection.deleteImages(victims.map((v) => v.image_id));
    expect((await consistent(t)).filesWithoutPoint).toHaveLength(victims.length);

    const warnings: string[] = [];
    await Catalog.open({
      store: t.store,
      files,
      models: t.service.models,
      alias: t.config.collection,
      log: { info: () => {}, warn: (m) => warnings.push(m) },
    });
    expect(warnings.join('\n')).toMatch(/Finished deleting 1 image\(s\), which a crash had interrupted/);
    expect(await consistent(t)).toEqual({ ok: true, pointsWithoutFile: 0, filesWithoutPoint: [] });
    expect(readdirSync(path.join(t.config.imageStorageDir, '.journal'))).toEqual([]);
    expect(await collection.count()).toBe(2);
  });

  it('a wipe cut off part-way is finished at the next start', async () => {
    const t = await start();
    for (let i = 0; i < 3; i++)
      expect((await ingest(t, `item${i}`, await images.jpeg(120, 90, i))).statusCode).toBe(201);
    const files = new ImageFiles(t.config.imageStorageDir);
    await files.beginDelete({ op: 'wipe' });
    await t.store
      .collection(t.config.collection)
      .deleteImages([(await t.store.collection(t.config.collection).itemImages('item0'))[0]!.image_id]);
    const warnings: string[] = [];
    await Catalog.open({
      store: t.store,
      files,
      models: t.service.models,
      alias: t.config.collection,
      log: { info: () => {}, warn: (m) => warnings.push(m) },
    });
    expect(warnings.join('\n')).toMatch(/Finished emptying the catalog/);
    expect(await t.store.collection(t.config.collection).count()).toBe(0);
    expect(await consistent(t)).toEqual({ ok: true, pointsWithoutFile: 0, filesWithoutPoint: [] });
  });
});

describe.skipIf(tmpfsUnavailable !== undefined)('a full image disk', () => {
  it(
    'answers 507 insufficient_storage, leaves no partial file, keeps searching, and recovers without a restart',
    {
      timeout: 120_000,
    },
    async () => {
      const mount = mountTmpfs(256);
      mounts.push(mount);
      const t = await start({ IMAGE_STORAGE_DIR: mount.dir });
      const big = await images.png(700, 500, 5); // ~430 KB: never fits in 256 KiB
      let answer = await ingest(t, 'too-big', big);
      expect(answer.statusCode, answer.body).toBe(507);
      expect(answer.json()).toMatchObject({
        error: 'insufficient_storage',
        message: expect.stringMatching(/Free space/),
      });
      expect(readdirSync(path.join(mount.dir, '.incoming'))).toEqual([]); // the partial file is gone at once
      // Small ones still fit, many times over: nothing leaked from the failures.
      for (let i = 0; i < 5; i++) {
        expect((await ingest(t, 'too-big', big)).statusCode).toBe(507);
      }
      const small = await images.jpeg(160, 120, 9);
      answer = await ingest(t, 'small', small);
      expect(answer.statusCode, answer.body).toBe(201);
      const search = await t.app.inject({ method: 'POST', url: '/search', ...(await multipart({}, { bytes: small })) });
      expect(search.statusCode).toBe(200);
      expect(search.json().results[0].item_id).toBe('small');
      mount.resize(8192);
      answer = await ingest(t, 'too-big', big);
      expect(answer.statusCode, answer.body).toBe(201);
      expect(existsSync(path.join(mount.dir, '.incoming'))).toBe(true);
      expect(await consistent(t)).toEqual({ ok: true, pointsWithoutFile: 0, filesWithoutPoint: [] });
    },
  );
});
