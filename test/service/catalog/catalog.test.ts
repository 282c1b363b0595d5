import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, StartupError } from '../../../service/src/catalog/catalog.js';
import { ImageFiles } from '../../../service/src/catalog/image-files.js';
import { ModelRegistry } from '../../../service/src/embedding/registry.js';
import { openEmbeddedStore } from '../../../service/src/store/embedded/store.js';
import type { ImageRecord, VectorStore } from '../../../service/src/store/port.js';
import * as images from '../../support/images.js';
import { writeTestModel } from '../../support/onnx-model.js';
import { recordFrom } from '../../../service/src/schemas/records.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'catalog-'));
  const models = path.join(dir, 'models');
  const main = writeTestModel({ dir: models, name: 'main_model', dim: 64 });
  writeTestModel({ dir: models, name: 'next_model', dim: 96, seed: 11 });
  const store = openEmbeddedStore({ dataDir: path.join(dir, 'data') });
  const registry = new ModelRegistry(main.onnxPath, { threads: 1, concurrency: 1, queueMax: 8, maxPixels: 50_000_000 });
  const files = new ImageFiles(path.join(dir, 'images'));
  const warnings: string[] = [];
  cleanups.push(
    () => rmSync(dir, { recursive: true, force: true }),
    () => store.close().catch(() => {}),
    () => registry.close(),
  );
  const open = (overrides: { store?: VectorStore; files?: ImageFiles; liveRefreshMs?: number } = {}) =>
    Catalog.open({
      store: overrides.store ?? store,
      files: overrides.files ?? files,
      models: registry,
      alias: 'items',
      log: { info: () => {}, warn: (m) => warnings.push(m) },
      liveRefreshMs: overrides.liveRefreshMs,
    });
  const sha256 = createHash('sha256').update(readFileSync(main.onnxPath)).digest('hex');
  return { dir, store, files, registry, warnings, open, sha256 };
}

const record = (imageId: string, itemId: string, file: string): ImageRecord =>
  recordFrom({
    image_id: imageId,
    item_id: itemId,
    item_name: null,
    item_code: null,
    file,
    sha256: 'x',
    bytes: 3,
    model: 'main_model',
    created_at: new Date().toISOString(),
  });

describe('Catalog start-up', () => {
  it('creates <alias>_<model>_<dim> behind the alias on first start', async () => {
    const { store, open } = setup();
    await open();
    expect(await store.listAliases()).toEqual({ items: 'items_main_model_64' });
    expect((await store.listCollections()).map((c) => [c.name, c.dim, c.model])).toEqual([
      ['items_main_model_64', 64, 'main_model'],
    ]);
  });

  it(
    'refuses to start on vectors of another width, naming both widths and the migration, and drops ' + 'nothing',
    async () => {
      const { store, open } = setup();
      await store.createCollection('items_old_576', 576, 'mobilenet_v3_small');
      await store.setAlias('items', 'items_old_576');
      await store.collection('items').upsert(record('a', 'A', 'f'), new Float32Array(576).fill(1));
      const error = (await open().catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(StartupError);
      expect(error.message).toMatch(/576-d.*64-d/);
      expect(error.message).toContain('migrate --to-model');
      expect(await store.collection('items').count()).toBe(1);
    },
  );

  it('refuses to start on vectors of another model of the same width', async () => {
    const { store, open } = setup();
    await store.createCollection('items_other_64', 64, 'other_model');
    await store.setAlias('items', 'items_other_64');
    await expect(open()).rejects.toThrow(/built with model other_model, but MODEL_PATH is model main_model/);
  });

  it("records the model file's sha256 with the collection and refuses other weights of the same model", async () => {
    const first = setup();
    await first.open();
    expect((await first.store.listCollections())[0]).toMatchObject({ model: 'main_model', modelSha256: first.sha256 });

    // Same name and width, other weights (random instead of trained): refused, nothing changed.
    const { store, open } = setup();
    await store.createCollection('items_main_model_64', 64, 'main_model', 'f'.repeat(64));
    await store.setAlias('items', 'items_main_model_64');
    const error = (await open().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(StartupError);
    expect(error.message).toMatch(/sha256 f{64}, but MODEL_PATH .* has sha256 [0-9a-f]{64}: the same model with other/);
    expect((await store.listCollections())[0].modelSha256).toBe('f'.repeat(64));
  });

  it('accepts a collection made before identities were recorded, and says so', async () => {
    const { store, open, warnings, sha256 } = setup();
    await store.createCollection('items_main_model_64', 64, 'main_model');
    await store.setAlias('items', 'items_main_model_64');
    const catalog = await open();
    expect(warnings.join('\n')).toContain(
      `records no model identity (made by an older release); serving it with main_model sha256 ${sha256}`,
    );
    expect(await catalog.ready()).toMatchObject({ model: 'main_model', model_sha256: sha256 });
  });

  it('finishes a staged image whose point was written, removes one whose point was not', async () => {
    const { store, files, warnings, open } = setup();
    const first = await open(); // creates the collection
    expect(first).toBeDefined();
    const kept = record(
      '11111111-1111-4111-8111-111111111111',
      'kept',
      files.relativePath('kept', '11111111-1111-4111-8111-111111111111', 'jpeg'),
    );
    await store.collection('items').upsert(kept, new Float32Array(64).fill(0.5));
    await files.stage(kept.image_id, Buffer.from('abc'));
    await files.stage('22222222-2222-4222-8222-222222222222', Buffer.from('orphan'));
    await open();
    expect(await files.exists(kept.file)).toBe(true);
    expect(await files.staged()).toEqual([]);
    expect(warnings).toHaveLength(2);
  });
});

describe('Catalog writes keep files and points consistent', () => {
  it('a failed upsert leaves no file behind', async () => {
    const { store, files, open } = setup();
    await open();
    // The real store, except that every upsert fails.
    const failing = new Proxy(store, {
      get: (target, property) =>
        property === 'collection'
          ? (name: string) =>
              new Proxy(target.collection(name), {
                get: (c, p) =>
                  p === 'upsert' ? async () => Promise.reject(new Error('disk full')) : Reflect.get(c, p),
              })
          : Reflect.get(target, property),
    });
    const catalog = await open({ store: failing });
    await expect(
      catalog.ingest({ item_id: 'x', item_name: null, item_code: null }, await images.jpeg(100, 80)),
    ).rejects.toThrow('disk full');
    expect(await files.staged()).toEqual([]);
    expect(existsSync(files.root) ? readdirSync(files.root).filter((e) => e !== '.incoming') : []).toEqual([]);
  });

  it('a file that cannot be moved into place takes its point with it', async () => {
    const { store, files, open } = setup();
    class BrokenFiles extends ImageFiles {
      override async commit(): Promise<void> {
        throw new Error('rename failed');
      }
    }
    const catalog = await open({ files: new BrokenFiles(files.root) });
    await expect(
      catalog.ingest({ item_id: 'y', item_name: null, item_code: null }, await images.jpeg(100, 80)),
    ).rejects.toThrow('rename failed');
    expect(await store.collection('items').itemImages('y')).toEqual([]);
    expect(await files.staged()).toEqual([]);
  });
});

describe('Catalog follows a migration', () => {
  it('picks up an alias switch to a collection of another model without a restart', async () => {
    const { store, open } = setup();
    const catalog = await open({ liveRefreshMs: 0 });
    const photo = await images.jpeg(200, 150, 5);
    await catalog.ingest({ item_id: 'before', item_name: null, item_code: null }, photo);
    expect((await catalog.embed(photo)).dim).toBe(64);

    // What `ops migrate` does: a new collection for the new model, filled, then the alias moved.
    await store.createCollection('items_next_model_96', 96, 'next_model');
    await store.setAlias('items', 'items_next_model_96');
    const embedded = await catalog.embed(photo);
    expect(embedded).toMatchObject({ model: 'next_model', dim: 96 });
    await catalog.ingest({ item_id: 'after', item_name: null, item_code: null }, photo);
    expect((await store.collection('items_next_model_96').itemImages('after'))[0]).toMatchObject({
      model: 'next_model',
    });
    expect(await catalog.ready()).toEqual({
      collection: 'items_next_model_96',
      model: 'next_model',
      model_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
      dim: 96,
    });
  });

  it("is 503 model_mismatch when the model beside MODEL_PATH has other weights than the collection's", async () => {
    const { store, open } = setup();
    const catalog = await open({ liveRefreshMs: 0 });
    await store.createCollection('items_next_model_96', 96, 'next_model', '0'.repeat(64));
    await store.setAlias('items', 'items_next_model_96');
    await expect(catalog.embed(await images.jpeg(64, 64))).rejects.toMatchObject({
      status: 503,
      code: 'model_mismatch',
      message: expect.stringMatching(/sha256 0{64}, but next_model here has sha256 [0-9a-f]{64}/) as string,
    });
  });

  it("answers 503 when the new collection's model is not available", async () => {
    const { store, open } = setup();
    const catalog = await open({ liveRefreshMs: 0 });
    await store.createCollection('items_gone_32', 32, 'gone_model');
    await store.setAlias('items', 'items_gone_32');
    await expect(catalog.search(await images.jpeg(64, 64), { limit: 5, minConfidence: 0 })).rejects.toMatchObject({
      status: 503,
      code: 'model_unavailable',
    });
  });
});

describe('ImageFiles', () => {
  it('wipe keeps the staging area of ingests in flight', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'files-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const files = new ImageFiles(dir);
    await files.stage('in-flight', Buffer.from('x'));
    mkdirSync(path.join(dir, 'ab'), { recursive: true });
    writeFileSync(path.join(dir, 'ab', 'f'), 'y');
    await files.wipe();
    expect(readdirSync(dir)).toEqual(['.incoming']);
    expect(await files.staged()).toEqual(['in-flight']);
  });

  it('refuses a stored path that points outside its directory', async () => {
    const files = new ImageFiles(mkdtempSync(path.join(tmpdir(), 'files-')));
    await expect(files.read('../outside.jpg')).rejects.toThrow(/outside the image directory/);
  });
});
