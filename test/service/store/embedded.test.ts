// Behaviour specific to the embedded adapter: durability, crash recovery, its derived index (checkpoints,
// damage, churn, the event loop), schema migrations, disk full, and coherence between processes sharing one
// database. (The port's contract is in store-contract.)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openEmbeddedStore, type EmbeddedStore } from '../../../service/src/store/embedded/store.js';
import { EmbeddedBackup } from '../../../service/src/store/embedded/backup.js';
import { SCHEMA_VERSION } from '../../../service/src/store/embedded/schema.js';
import { StoreFullError, type ImageRecord } from '../../../service/src/store/port.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../../support/tmpfs.js';
import { recordFrom } from '../../../service/src/schemas/records.js';

const dirs: string[] = [];
const stores: EmbeddedStore[] = [];
const mounts: Tmpfs[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {});
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const mount of mounts.splice(0)) mount.unmount();
});

const tempDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'embedded-'));
  dirs.push(dir);
  return dir;
};
type Options = { checkpointEvery?: number; trainAt?: number; log?: (m: string) => void };
const open = (dataDir: string, options: Options = {}) => {
  const store = openEmbeddedStore({ dataDir, ...options });
  stores.push(store);
  return store;
};
const reopen = async (store: EmbeddedStore, dataDir: string, options: Options = {}) => {
  await store.close();
  stores.splice(stores.indexOf(store), 1);
  return open(dataDir, options);
};
const record = (imageId: string, itemId: string): ImageRecord =>
  recordFrom({
    image_id: imageId,
    item_id: itemId,
    item_name: null,
    item_code: null,
    file: `${imageId}.jpg`,
    sha256: 'x',
    bytes: 1,
    model: 'm',
    created_at: new Date().toISOString(),
  });
const axis = (i: number, dim = 8) => {
  const v = new Float32Array(dim);
  v[i % dim] = 1;
  return v;
};
/** A deterministic, distinct direction per integer. */
const wave = (i: number, dim = 16) => Float32Array.from({ length: dim }, (_, d) => Math.sin(i * 0.37 + d * 1.3));
const ids = async (store: EmbeddedStore, collection: string) => {
  const all: string[] = [];
  for (let after: string | undefined; ;) {
    const page = await store.collection(collection).scroll({ after, limit: 500 });
    all.push(...page.points.map((p) => p.record.image_id));
    if (!page.next) return all;
    after = page.next;
  }
};

describe('embedded store', () => {
  it('keeps points, aliases and the index across a clean restart (index loaded from its checkpoint)', async () => {
    const dir = tempDir();
    const first = open(dir);
    await first.createCollection('c_m_8', 8, 'm');
    await first.setAlias('items', 'c_m_8');
    await first
      .collection('items')
      .upsertMany([0, 1, 2].map((i) => ({ record: record(`i${i}`, `item${i}`), vector: axis(i) })));
    expect((await first.collection('items').searchItems(axis(1), 1))[0].record.item_id).toBe('item1');
    const logs: string[] = [];
    const second = await reopen(first, dir, { log: (m) => logs.push(m) });
    // One checkpoint per index that was in use (the image index here).
    expect(readdirSync(path.join(dir, 'index'))).toEqual([expect.stringMatching(/^c_m_8\.image\.\d+\.vidx$/)]);
    expect(await second.listAliases()).toEqual({ items: 'c_m_8' });
    const [hit] = await second.collection('items').searchItems(axis(2), 1);
    expect(hit).toMatchObject({ record: { item_id: 'item2' } });
    expect(hit.score).toBeCloseTo(1, 6);
    expect(logs.filter((m) => m.includes('Rebuilt'))).toEqual([]); // loaded, not rebuilt
  });

  it('loses no acknowledged write when the process is killed with SIGKILL', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, '../../support/embedded-writer.ts'), dir, '300'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('written') && resolve());
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));

    const store = open(dir);
    expect(await store.collection('c').count()).toBe(300);
    expect(await ids(store, 'c')).toEqual(Array.from({ length: 300 }, (_, i) => `img-${String(i).padStart(4, '0')}`));
    const hits = await store.collection('c').searchItems(axis(3), 3);
    expect(hits).toHaveLength(3);
    expect(hits[0].score).toBeGreaterThan(0.99);
  });

  it(
    'always restarts after kill -9 during adds, deletes and checkpoints, with every acknowledged change',
    {
      timeout: 120_000,
    },
    async () => {
      const dir = tempDir();
      const added = new Set<string>();
      const deleted = new Set<string>();
      const deleting = new Set<string>();
      let next = 0;
      for (let round = 0; round < 8; round++) {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', path.join(import.meta.dirname, '../../support/embedded-churner.ts'), dir, String(next)],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let buffered = '';
        let acknowledged = 0;
        const target = 20 + ((round * 37) % 60);
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (chunk: Buffer) => {
            buffered += chunk.toString();
            const lines = buffered.split('\n');
            buffered = lines.pop()!;
            for (const line of lines) {
              const id = line.slice(1);
              if (line.startsWith('+')) added.add(id);
              else if (line.startsWith('?')) deleting.add(id);
              else deleted.add(id);
              next = Math.max(next, Number(id.slice(4)) + 1);
              if (++acknowledged === target) {
                child.kill('SIGKILL');
                resolve();
              }
            }
          });
          child.on('exit', (code, signal) => signal !== 'SIGKILL' && reject(new Error(`churner exited with ${code}`)));
        });
        await new Promise((resolve) => child.on('exit', resolve));
        // Reopen like a restarting service: it must open, hold every acknowledged change, and search.
        const logs: string[] = [];
        const store = open(dir, { log: (m) => logs.push(m) });
        const present = new Set(await ids(store, 'c'));
        for (const id of added) {
          if (!deleted.has(id) && !deleting.has(id)) expect(present.has(id), `${id} lost`).toBe(true);
        }
        for (const id of deleted) expect(present.has(id), `${id} came back`).toBe(false);
        const hits = await store.collection('c').searchItems(wave(next - 1), 40);
        for (const hit of hits) expect(deleted.has(hit.record.image_id)).toBe(false);
        await store.close();
        stores.splice(stores.indexOf(store), 1);
      }
      // Leftovers of interrupted checkpoints are cleaned up by the next one.
      expect(readdirSync(path.join(dir, 'index')).filter((f) => f.endsWith('.tmp')).length).toBeLessThanOrEqual(1);
    },
  );

  describe('a damaged checkpoint is never loaded: the index is rebuilt from the database, and says so', () => {
    const damages: Array<[string, (file: string, dir: string) => void]> = [
      ['garbage of another length', (file) => writeFileSync(file, 'garbage')],
      ['truncated', (file) => truncateSync(file, 100)],
      [
        'same length, flipped bytes',
        (file) => {
          const data = readFileSync(file);
          data[data.length - 5] ^= 0xff;
          writeFileSync(file, data);
        },
      ],
      ['missing', (file) => rmSync(file)],
      [
        'recorded hash matches, content is not an index',
        (file, dir) => {
          writeFileSync(file, Buffer.alloc(64, 7));
          const db = new Database(path.join(dir, 'store.sqlite'));
          db.prepare('UPDATE checkpoints SET bytes = 64, sha256 = ?').run(
            createHash('sha256').update(Buffer.alloc(64, 7)).digest('hex'),
          );
          db.close();
        },
      ],
    ];
    for (const [name, damage] of damages) {
      it(name, async () => {
        const dir = tempDir();
        const first = open(dir);
        await first.createCollection('c', 8, 'm');
        await first
          .collection('c')
          .upsertMany([0, 1, 2, 3].map((i) => ({ record: record(`i${i}`, `item${i}`), vector: axis(i) })));
        await first.prepareIndex('c');
        await first.close();
        stores.length = 0;
        const file = readdirSync(path.join(dir, 'index')).find((f) => f.includes('.image.'));
        damage(path.join(dir, 'index', file!), dir);

        const logs: string[] = [];
        const second = open(dir, { log: (m) => logs.push(m) });
        expect((await second.collection('c').searchItems(axis(3), 1))[0].record.item_id).toBe('item3');
        expect(logs.join('\n')).toMatch(/checkpoint c\.image\.\d+\.vidx of c is not usable \(.+\); rebuilding/);
        expect(logs.join('\n')).toMatch(/Rebuilt the vector index of c from 4 points/);
      });
    }
  });

  it("keeps two processes coherent: each sees the other's inserts and deletes before searching", async () => {
    const dir = tempDir();
    const writer = open(dir, { checkpointEvery: 3 });
    const reader = open(dir);
    await writer.createCollection('c', 8, 'm');
    await writer.collection('c').upsert(record('a', 'A'), axis(0));
    expect((await reader.collection('c').searchItems(axis(0), 5)).map((m) => m.record.item_id)).toEqual(['A']);
    // More writes than checkpointEvery: the writer checkpoints and prunes the log the reader had not applied.
    await writer.collection('c').searchItems(axis(0), 1);
    for (let i = 1; i < 8; i++) await writer.collection('c').upsert(record(`p${i}`, `P${i}`), axis(i));
    await writer.prepareIndex('c');
    await writer.collection('c').deleteItem('A');
    const seen = await reader.collection('c').searchItems(axis(0), 10);
    expect(seen.map((m) => m.record.item_id)).not.toContain('A');
    expect(seen).toHaveLength(7);
    expect((await reader.collection('c').searchItems(axis(5), 1))[0].record.item_id).toBe('P5');
  });

  it(
    'survives item churn and wipes through the port: removed images never come back',
    { timeout: 120_000 },
    async () => {
      // The usearch index froze after ~190 of these cycles through the API, and after a few wipe rounds.
      const store = open(tempDir(), { checkpointEvery: 500, trainAt: 1000 });
      await store.createCollection('c', 16, 'm');
      const c = store.collection('c');
      const permanent = Array.from({ length: 1500 }, (_, i) => ({
        record: record(`p${i}`, `perm${i}`),
        vector: wave(i),
      }));
      await c.upsertMany(permanent);
      for (let cycle = 0; cycle < 3000; cycle++) {
        const id = `churn${cycle}`;
        const vector = wave(100_000 + cycle);
        await c.upsert(record(id, id), vector);
        expect((await c.searchItems(vector, 1))[0].record.image_id).toBe(id);
        await c.deleteItem(id);
        expect((await c.searchItems(vector, 5)).map((m) => m.record.image_id)).not.toContain(id);
      }
      expect(await c.count()).toBe(1500);
      for (let round = 0; round < 5; round++) {
        await c.deleteAll();
        expect(await c.searchItems(wave(1), 5)).toEqual([]);
        await c.upsertMany(
          Array.from({ length: 25 }, (_, i) => ({ record: record(`w${round}-${i}`, `w${i}`), vector: wave(i) })),
        );
        for (let s = 0; s < 69; s++) {
          const [hit] = await c.searchItems(wave(s % 25), 1);
          expect(hit!.record.image_id).toBe(`w${round}-${s % 25}`);
        }
      }
    },
  );

  it('a rebuild and its clustering let the event loop run in between (no long block)', async () => {
    const dir = tempDir();
    const first = open(dir, { trainAt: 2000 });
    await first.createCollection('c', 64, 'm');
    for (let start = 0; start < 20_000; start += 2000) {
      await first.collection('c').upsertMany(
        Array.from({ length: 2000 }, (_, i) => ({
          record: record(`v${start + i}`, `i${start + i}`),
          vector: wave(start + i, 64),
        })),
      );
    }
    // Reopen without a checkpoint: the next search rebuilds (reads 20k points, clusters them).
    const db = new Database(path.join(dir, 'store.sqlite'));
    await first.close();
    stores.length = 0;
    db.prepare('DELETE FROM checkpoints').run();
    db.close();
    const second = open(dir, { trainAt: 2000 });
    let turns = 0;
    let done = false;
    const ticker = (): void => {
      turns++;
      if (!done) setImmediate(ticker);
    };
    setImmediate(ticker);
    const [hit] = await second.collection('c').searchItems(wave(12_345, 64), 1);
    done = true;
    expect(hit!.record.image_id).toBe('v12345');
    expect(turns).toBeGreaterThan(20); // the rebuild paused at least once per 1000 points read
  });

  it('refuses vectors of the wrong width', async () => {
    const store = open(tempDir());
    await store.createCollection('c', 8, 'm');
    await expect(store.collection('c').upsert(record('a', 'A'), new Float32Array(4))).rejects.toThrow(
      /width 4 does not match collection c \(8\)/,
    );
  });

  it('dumps an online copy that is a complete store, then restores it offline, keeping the replaced data', async () => {
    const dir = tempDir();
    const store = open(dir);
    await store.createCollection('c', 8, 'm');
    await store.collection('c').upsert(record('a', 'A'), axis(0));
    const backup = new EmbeddedBackup(dir);
    const target = tempDir();
    const dump = await backup.dump(target, await store.listCollections());
    await store.collection('c').upsert(record('b', 'B'), axis(1)); // after the dump: not in the copy
    expect(await dump.points.collection('c').count()).toBe(1);
    const files = await dump.seal();
    expect(files).toEqual([
      { file: 'store/store.sqlite', size: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ]);
    await expect(backup.restore(target, files)).rejects.toThrow(/is in use .* stop the API first/);
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    const { previous } = await backup.restore(target, files);
    expect(readdirSync(previous!).sort()).toEqual(['index', 'store.sqlite']);
    expect(await open(dir).collection('c').count()).toBe(1);
  });
});

describe('embedded schema migrations', () => {
  it('opens a data directory made by the previous release (no user_version) and migrates it', async () => {
    const dir = tempDir();
    cpSync(path.join(import.meta.dirname, '../../fixtures/embedded-v1'), dir, { recursive: true });
    const logs: string[] = [];
    const store = open(dir, { log: (m) => logs.push(m) });
    expect(logs.filter((m) => m.startsWith('Embedded database upgraded'))).toHaveLength(SCHEMA_VERSION);
    const db = new Database(path.join(dir, 'store.sqlite'), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
    expect(await store.listAliases()).toEqual({ items: 'items_old_model_16' });
    expect((await store.listCollections()).map((c) => [c.name, c.dim, c.model, c.points])).toEqual([
      ['items_old_model_16', 16, 'old_model', 11],
      ['other_empty_8', 8, 'tiny', 0],
    ]);
    const items = store.collection('items');
    expect(await items.itemImages('item-3')).toEqual([
      expect.objectContaining({ item_id: 'item-3', item_name: null, item_code: 'CODE-3', bytes: 1003 }),
      expect.objectContaining({ item_id: 'item-3', bytes: 1008 }),
    ]);
    // The old usearch checkpoint is never handed to anything: the index is rebuilt from the points...
    const scan = await items.scroll({ limit: 20, withVectors: true });
    const [hit] = await items.searchItems(scan.points[4]!.vector!, 1);
    expect(hit!.record.image_id).toBe(scan.points[4]!.record.image_id);
    expect(logs.join('\n')).toMatch(/Rebuilt the vector index of items_old_model_16 from 11 points/);
    // ...and the first new checkpoint removes the old file.
    await store.prepareIndex('items');
    expect(readdirSync(path.join(dir, 'index')).sort()).toEqual([
      expect.stringMatching(/^items_old_model_16\.catalog\.\d+\.vidx$/),
      expect.stringMatching(/^items_old_model_16\.image\.\d+\.vidx$/),
      expect.stringMatching(/^items_old_model_16\.photo\.\d+\.vidx$/),
    ]);
    // A second open has nothing left to migrate.
    const again = await reopen(store, dir, { log: (m) => logs.push(m) });
    expect(logs.filter((m) => m.startsWith('Embedded database upgraded'))).toHaveLength(SCHEMA_VERSION);
    expect(await again.collection('items').count()).toBe(11);
  });

  it('refuses a database made by a newer release, changing nothing', () => {
    const dir = tempDir();
    const db = new Database(path.join(dir, 'store.sqlite'));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => open(dir)).toThrow(/schema version \d+, made by a newer release/);
    const after = new Database(path.join(dir, 'store.sqlite'), { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    after.close();
  });
});

describe.skipIf(tmpfsUnavailable !== undefined)('embedded store on a full disk', () => {
  it('a checkpoint that does not fit leaves no partial file, searches go on, works once space is freed', async () => {
    const dir = tempDir();
    const logs: string[] = [];
    const store = open(dir, { log: (m) => logs.push(m), checkpointEvery: 1_000_000 });
    await store.createCollection('c', 256, 'm');
    await store
      .collection('c')
      .upsertMany(Array.from({ length: 2000 }, (_, i) => ({ record: record(`v${i}`, `i${i}`), vector: wave(i, 256) })));
    const mount = mountTmpfs(128); // a checkpoint of 2000 × 256 int8 codes needs ~540 KiB
    mounts.push(mount);
    rmSync(path.join(dir, 'index'), { recursive: true });
    symlinkSync(mount.dir, path.join(dir, 'index'));
    await expect(store.prepareIndex('c')).rejects.toBeInstanceOf(StoreFullError);
    expect(readdirSync(mount.dir)).toEqual([]);
    expect(logs.join('\n')).toMatch(/Could not save the image index checkpoint of c \(.*ENOSPC/);
    expect((await store.collection('c').searchItems(wave(7, 256), 1))[0]!.record.image_id).toBe('v7');
    mount.resize(4096);
    await store.prepareIndex('c');
    expect(readdirSync(mount.dir)).toContainEqual(expect.stringMatching(/^c\.image\.\d+\.vidx$/));
  });

  it('a write to a full database fails with StoreFullError, changes nothing, reads go on, writes resume', async () => {
    const mount = mountTmpfs(1024);
    mounts.push(mount);
    const store = open(mount.dir, { checkpointEvery: 1_000_000 });
    await store.createCollection('c', 256, 'm');
    const c = store.collection('c');
    let written = 0;
    let failure: unknown;
    for (let i = 0; i < 5000 && !failure; i++) {
      try {
        await c.upsert(record(`v${i}`, `i${i}`), wave(i, 256));
        written++;
      } catch (error) {
        failure = error;
      }
    }
    expect(failure).toBeInstanceOf(StoreFullError);
    expect((failure as Error).message).toMatch(/disk under DATA_DIR is full/);
    expect(await c.count()).toBe(written);
    expect((await c.searchItems(wave(3, 256), 1))[0]!.record.image_id).toBe('v3');
    mount.resize(8192);
    await c.upsert(record('after', 'after'), wave(9999, 256));
    expect(await c.count()).toBe(written + 1);
    expect(existsSync(path.join(mount.dir, 'store.sqlite'))).toBe(true);
  });
});
