// The ERPNext sync end to end: the strict Frappe double over loopback HTTP, the real catalog on the embedded store
// with a real (small) ONNX model, real image files. Embeddings are counted at the embedder, downloads in the
// double's request log, so "nothing embedded, nothing downloaded" is measured, not assumed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Embedder } from '../../../service/src/embedding/embedder.js';
import { erpNextSync } from '../../../service/src/erpnext/connector.js';
import { readSyncState, syncStatePath } from '../../../service/src/erpnext/sync-state.js';
import { SyncBusyError, type ErpNextSync, type SyncReporter } from '../../../service/src/erpnext/sync.js';
import { ImageFiles } from '../../../service/src/catalog/image-files.js';
import type { ImageRecord } from '../../../service/src/schemas/records.js';
import { checkConsistency } from '../../../scripts/consistency.js';
import { multipart, type TestApp } from '../../support/app.js';
import {
  catalogImages,
  fileDownloads,
  freshPicture,
  seedCatalog,
  seedItem,
  startWithErpNext,
  SYNC_ZERO,
  type SeededItem,
} from '../../support/erpnext-seed.js';
import { FrappeDouble, type ApiUser } from '../../support/frappe-double.js';
import { truncatedJpeg } from '../../support/images.js';

let double: FrappeDouble;
let reader: ApiUser;
let t: TestApp;
let sync: ErpNextSync;
let lines: { level: 'info' | 'warn'; message: string }[];
let embeds: ReturnType<typeof vi.spyOn>;

const reporter: SyncReporter = {
  info: (message) => lines.push({ level: 'info', message }),
  warn: (message) => lines.push({ level: 'warn', message }),
  progress: () => ({ advance: () => {}, done: () => {} }),
};
const silentReporter = { ...reporter, summary: () => {} };
const warnings = () => lines.filter((line) => line.level === 'warn').map((line) => line.message);

async function start(env: Record<string, string> = {}) {
  ({ double, reader, t } = await startWithErpNext({ env }));
  sync = erpNextSync(t.config, t.catalog, reporter, {
    client: { retry: { retries: 3, minDelayMs: 1, maxDelayMs: 5 } },
  });
}

beforeEach(() => {
  lines = [];
  embeds = vi.spyOn(Embedder.prototype, 'embed');
});

afterEach(async () => {
  embeds.mockRestore();
  sync?.close();
  await t?.close();
  await double?.close();
  double?.assertNoViolations();
  expect(lines.map((line) => line.message).join('\n')).not.toContain(reader.secret);
});

const run = (options: Partial<Parameters<ErpNextSync['run']>[0]> = {}) => sync.run({ reporter, ...options });
const downloads = () => fileDownloads(double);

const catalogNow = () => catalogImages(t.catalog);

async function expectMirrors(seeded: SeededItem[]) {
  const held = await catalogNow();
  expect([...held.keys()].sort()).toEqual(seeded.map((item) => item.name).sort());
  for (const item of seeded) {
    const images = held.get(item.name)!;
    expect(images.map((image) => image.source_ref).sort(), item.name).toEqual([...item.urls].sort());
    expect(new Set(images.map((image) => image.sha256)).size).toBe(images.length);
    for (const image of images) expect(image).toMatchObject({ source: 'erpnext', kind: 'catalog' });
  }
}

async function expectConsistent() {
  const report = await checkConsistency({
    store: t.store,
    files: new ImageFiles(t.config.imageStorageDir),
    alias: t.config.collection,
    reporter: silentReporter,
  });
  expect(report.pointsWithoutFile).toEqual([]);
  expect(report.filesWithoutPoint).toEqual([]);
  expect(report.ok).toBe(true);
}

describe('a 200-item catalog', () => {
  it('comes in whole; a re-run embeds, downloads and writes nothing; every kind of change is applied', async () => {
    await start();
    const seeded = await seedCatalog(double, 200);
    const images = seeded.reduce((sum, item) => sum + item.urls.length, 0);
    expect(images).toBe(500);

    const first = await run();
    expect(first).toMatchObject({ ...SYNC_ZERO, items_added: 200, images_added: 500 });
    expect(embeds).toHaveBeenCalledTimes(500);
    await expectMirrors(seeded);
    const sample = (await t.catalog.item('ITEM-0007'))[0];
    expect(sample).toMatchObject({
      item_id: 'ITEM-0007',
      item_code: 'ITEM-0007',
      item_name: 'Name of ITEM-0007',
      item_group: 'Tools',
      brand: 'Acme',
      disabled: false,
    });
    // Private files were fetched with the token, public ones without.
    const fetched = double.requests.filter((r) => r.path.startsWith('/private/files/'));
    expect(fetched.length).toBeGreaterThan(0);
    expect(fetched.every((r) => r.authorization && r.user === reader.user)).toBe(true);
    expect(double.requests.filter((r) => r.path.startsWith('/files/')).every((r) => !r.authorization)).toBe(true);
    await expectConsistent();

    // A picture of an item finds that item first.
    const search = await t.catalog.search(seeded[41].pictures[1], { limit: 3, minConfidence: 0 });
    expect(search.results[0].record.item_id).toBe('ITEM-0042');

    // Nothing changed in ERPNext: nothing is embedded, downloaded or written.
    embeds.mockClear();
    const before = JSON.stringify([...(await catalogNow())]);
    const downloaded = downloads();
    const second = await run();
    expect(second).toMatchObject(SYNC_ZERO);
    expect(embeds).not.toHaveBeenCalled();
    expect(downloads()).toBe(downloaded);
    expect(JSON.stringify([...(await catalogNow())])).toBe(before);

    // Every kind of change.
    double.updateItem('ITEM-0001', { item_name: 'Renamed' }); // display name: no re-embedding
    double.updateItem('ITEM-0002', { item_group: 'Tools', brand: 'Initech' }); // regrouped
    double.updateItem('ITEM-0003', { disabled: 1 });
    const added = await seedItem(double, 'NEW-0001', 3, { item_group: 'Products' }); // a new item
    // An attachment added to an unchanged Item (the Item's `modified` stays).
    const extra = double.addFile({ attachedTo: 'ITEM-0005', fileName: 'extra.png', content: await freshPicture() });
    // An attachment removed (ITEM-0008 has 4 images: remove its last).
    const dropped = double.files().find((f) => f.file_url === seeded[7].urls[3])!;
    double.deleteFile(String(dropped.name));
    // The image field replaced by a new upload (the old file is deleted in ERPNext).
    const replacement = double.addFile({ fileName: 'new-image.jpg', content: await freshPicture() });
    const oldImage = double.files().find((f) => f.file_url === seeded[9].urls[0])!;
    double.updateItem('ITEM-0010', { image: String(replacement.file_url) });
    double.deleteFile(String(oldImage.name));
    double.deleteItem('ITEM-0011'); // deleted (3 images)
    double.renameItem('ITEM-0012', 'ITEM-0012-B'); // renamed (4 images follow it)
    // Staff photos added through the API: kept through every change of the ERPNext images, removed with the item.
    const staffPhoto = async (itemId: string) => {
      const form = await multipart({ kind: 'photo' }, { bytes: await freshPicture() });
      const answer = await t.app.inject({ method: 'POST', url: `/items/${itemId}/images`, ...form });
      expect(answer.statusCode).toBe(201);
      return answer.json<ImageRecord>();
    };
    const kept = await staffPhoto('ITEM-0010');
    await staffPhoto('ITEM-0013');
    double.deleteItem('ITEM-0013');

    embeds.mockClear();
    const third = await run();
    expect(third).toMatchObject({
      items_added: 2, // NEW-0001, ITEM-0012-B
      items_updated: 6, // 0001, 0002, 0003 (fields), 0005 (+1), 0008 (-1), 0010 (+1 -1)
      items_removed: 3, // 0011, 0012, 0013
      images_added: 3 + 4 + 1 + 1, // NEW-0001, ITEM-0012-B, extra, the new image field
      images_removed: 3 + 4 + 2 + 1 + 1, // 0011, 0012, 0013 (its one ERPNext image and the staff photo), 0008, 0010
      failed: 0,
    });
    expect(embeds).toHaveBeenCalledTimes(9); // the new pictures only: field changes never re-embed
    expect((await t.catalog.item('ITEM-0001'))[0].item_name).toBe('Renamed');
    expect((await t.catalog.item('ITEM-0002'))[0]).toMatchObject({ item_group: 'Tools', brand: 'Initech' });
    expect((await t.catalog.item('ITEM-0003')).every((image) => image.disabled)).toBe(true);
    expect((await t.catalog.item('NEW-0001')).map((i) => i.source_ref).sort()).toEqual([...added.urls].sort());
    expect((await t.catalog.item('ITEM-0005')).map((i) => i.source_ref)).toContain(extra.file_url);
    expect((await t.catalog.item('ITEM-0008')).map((i) => i.source_ref)).not.toContain(seeded[7].urls[3]);
    const item10 = await t.catalog.item('ITEM-0010');
    expect(item10.map((i) => String(i.source_ref)).sort()).toEqual(
      [seeded[9].urls[1], String(replacement.file_url), 'null'].sort(),
    );
    expect(item10.find((i) => i.source === 'api')?.image_id).toBe(kept.image_id);
    for (const gone of ['ITEM-0011', 'ITEM-0012', 'ITEM-0013']) {
      await expect(t.catalog.item(gone)).rejects.toMatchObject({ code: 'item_not_found' });
    }
    expect((await t.catalog.item('ITEM-0012-B')).map((i) => i.source_ref).sort()).toEqual([...seeded[11].urls].sort());
    await expectConsistent();

    // And again: all quiet.
    embeds.mockClear();
    expect(await run()).toMatchObject(SYNC_ZERO);
    expect(embeds).not.toHaveBeenCalled();
    expect(warnings()).toEqual([]);
  });
});

describe('failures', () => {
  it('reports an image that fails with its Item, skips it, keeps going, and tries it again next run', async () => {
    await start({ MAX_IMAGE_BYTES: String(64 * 1024) });
    const good = await seedCatalog(double, 6);
    double.addItem({ item_code: 'BROKEN' });
    const missing = double.addFile({ attachedTo: 'BROKEN', fileName: 'missing.jpg', content: await freshPicture() });
    double.removeFileBytes(String(missing.file_url)); // 404
    double.addFile({ attachedTo: 'BROKEN', fileName: 'text.jpg', content: Buffer.from('not a picture at all') });
    double.addFile({ attachedTo: 'BROKEN', fileName: 'huge.png', content: Buffer.alloc(100 * 1024, 7) }); // too large
    double.addFile({ attachedTo: 'BROKEN', fileName: 'cut.jpg', content: await truncatedJpeg() }); // broken
    const fine = double.addFile({ attachedTo: 'BROKEN', fileName: 'fine.jpg', content: await freshPicture() });

    const first = await run();
    expect(first).toMatchObject({ items_added: 7, images_added: 14, failed: 4 });
    const messages = warnings();
    expect(messages).toHaveLength(4);
    for (const name of ['missing.jpg', 'text.jpg', 'huge.png', 'cut.jpg']) {
      expect(
        messages.some((m) => m.includes('"BROKEN"') && m.includes(name)),
        name,
      ).toBe(true);
    }
    expect((await t.catalog.item('BROKEN')).map((i) => i.source_ref)).toEqual([fine.file_url]);
    await expectMirrors([...good, { name: 'BROKEN', urls: [String(fine.file_url)], pictures: [] }]);
    const state = await readSyncState(
      syncStatePath(t.config.imageStorageDir),
      JSON.stringify({ url: double.url, filters: [] }),
    );
    expect(state.retry).toEqual(['BROKEN']);
    expect(state.watermark).not.toBeNull();

    // Next run: only BROKEN is tried again (its four failing files), nothing else downloaded.
    const downloaded = downloads();
    lines = [];
    expect(await run()).toMatchObject({ ...SYNC_ZERO, failed: 4 });
    expect(downloads() - downloaded).toBe(4);

    // Fixed in ERPNext: the image arrives, and the item leaves the retry list.
    const text = double.files().find((f) => f.file_name === 'text.jpg')!;
    double.deleteFile(String(text.name));
    double.deleteFile(String(double.files().find((f) => f.file_name === 'huge.png')!.name));
    double.deleteFile(String(double.files().find((f) => f.file_name === 'cut.jpg')!.name));
    double.deleteFile(String(missing.name));
    double.addFile({ attachedTo: 'BROKEN', fileName: 'text.jpg', content: await freshPicture() });
    expect(await run()).toMatchObject({ ...SYNC_ZERO, items_updated: 1, images_added: 1 });
    expect(await run()).toMatchObject(SYNC_ZERO);
  });

  it('retries 429, 5xx, resets and timeouts, and still brings everything in', async () => {
    await start();
    const seeded = await seedCatalog(double, 8);
    double.injectFault({ kind: 'status', status: 429, retryAfter: '0' }, { times: 2, path: '/api/resource/Item' });
    double.injectFault({ kind: 'status', status: 503 }, { times: 2, path: '/api/resource/File' });
    double.injectFault({ kind: 'reset' }, { times: 2, path: '/files/' });
    double.injectFault({ kind: 'status', status: 502 }, { times: 1, path: '/private/files/' });
    expect(await run()).toMatchObject({ items_added: 8, images_added: 20, failed: 0 });
    await expectMirrors(seeded);
    expect(double.requests.filter((r) => r.status === 'reset' || r.status === 429).length).toBe(4);
  });

  it('stops when ERPNext refuses the key, with a message that says what to check', async () => {
    await start();
    await seedCatalog(double, 2);
    const wrong = erpNextSync({ ...t.config, erpnextApiSecret: 'wrong-secret-value' }, t.catalog, reporter);
    try {
      await expect(wrong.run({ reporter })).rejects.toThrow(/ERPNEXT_API_KEY and ERPNEXT_API_SECRET/);
    } finally {
      wrong.close();
    }
    expect(await catalogNow()).toEqual(new Map());
  });
});

describe('interruption', () => {
  it('an aborted run keeps its watermark behind unfinished work; the next run finishes with no duplicate', async () => {
    await start();
    const seeded = await seedCatalog(double, 40);
    const controller = new AbortController();
    let files = 0;
    double.beforeRequest(({ path }) => {
      if (/^\/(private\/)?files\//.test(path) && ++files === 30) controller.abort(new Error('stop'));
    });
    await expect(run({ signal: controller.signal })).rejects.toThrow('stop');
    const partial = await catalogNow();
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThan(40);
    const state = await readSyncState(
      syncStatePath(t.config.imageStorageDir),
      JSON.stringify({ url: double.url, filters: [] }),
    );
    expect(state.last_full).toBeNull();
    // The watermark advanced over the finished items, and never past an item that is not fully in the catalog.
    expect(state.watermark).not.toBeNull();
    const covered = double.items().filter((item) => String(item.modified) <= state.watermark!);
    expect(covered.length).toBeGreaterThan(0);
    for (const item of covered) {
      const urls = seeded.find((s) => s.name === item.name)!.urls;
      expect((partial.get(String(item.name)) ?? []).length, String(item.name)).toBe(urls.length);
    }
    const held = [...partial.values()].reduce((sum, images) => sum + images.length, 0);
    const second = await run();
    expect(second.images_added + held).toBe(100); // nothing stored twice, nothing lost
    await expectMirrors(seeded);
    await expectConsistent();
    expect(await run()).toMatchObject(SYNC_ZERO);
  });
});

describe('one sync at a time', () => {
  it('refuses a second run while one is running, naming the holder', async () => {
    await start();
    await seedCatalog(double, 3);
    // The first run hangs on its first download until its client times out (then retries and finishes).
    double.injectFault({ kind: 'hang' }, { times: 1, path: '/files/' });
    const slow = erpNextSync(t.config, t.catalog, reporter, {
      client: { timeoutMs: 1500, retry: { retries: 2, minDelayMs: 1, maxDelayMs: 5 } },
    });
    try {
      const first = slow.run({ reporter, holder: 'the first run' });
      await vi.waitFor(() => expect(double.requests.some((r) => r.status === 'hang')).toBe(true));
      const refused = await run({ holder: 'the second run' }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(SyncBusyError);
      expect((refused as Error).message).toMatch(/another ERPNext sync is running \(the first run, pid \d+ on /);
      expect(await first).toMatchObject({ items_added: 3, images_added: 6 });
    } finally {
      slow.close();
    }
    expect(await run()).toMatchObject(SYNC_ZERO);
  });
});

describe('dry run', () => {
  it('prints what would change and changes nothing', async () => {
    await start();
    await seedCatalog(double, 5);
    const summary = await run({ dryRun: true });
    expect(summary).toMatchObject({ ...SYNC_ZERO, items_added: 5, images_added: 1 + 2 + 3 + 4 + 1 });
    expect(lines.filter((l) => l.message.startsWith('would ')).length).toBe(5);
    expect(await catalogNow()).toEqual(new Map());
    expect(downloads()).toBe(0);
    expect(embeds).not.toHaveBeenCalled();
  });
});

describe('scope', () => {
  it('syncs only the Items ERPNEXT_ITEM_FILTERS selects, and removes one that leaves the selection', async () => {
    await start({ ERPNEXT_ITEM_FILTERS: '[["item_group","in",["Products","Spares"]]]' });
    const seeded = await seedCatalog(double, 8); // groups cycle Products, Spares, Tools, Raw Material
    expect(await run()).toMatchObject({ items_added: 4 });
    await expectMirrors(seeded.filter((_, index) => index % 4 < 2));
    double.updateItem('ITEM-0001', { item_group: 'Tools' });
    expect(await run()).toMatchObject({ ...SYNC_ZERO, items_removed: 1, images_removed: 1 });
  });

  it('does not empty the catalog when ERPNext suddenly lists almost nothing', async () => {
    await start();
    await seedCatalog(double, 30);
    await run();
    for (const item of double.items().slice(0, 25)) double.deleteItem(String(item.name));
    const summary = await run();
    expect(summary).toMatchObject({ items_removed: 0, failed: 25 });
    expect(warnings().join('\n')).toMatch(
      /25 of the 30 items here are not among ERPNext's Items.*--allow-mass-removal/,
    );
    expect((await catalogNow()).size).toBe(30);
    expect(await run({ allowMassRemoval: true })).toMatchObject({ items_removed: 25 });
    expect((await catalogNow()).size).toBe(5);
  });
});
