// Behaviour specific to the embedded adapter: durability, crash recovery, its derived index, and
// coherence between processes sharing one database. (The port's contract is in store-contract.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openEmbeddedStore, type EmbeddedStore } from '../../../service/src/store/embedded.js';
import type { ImageRecord } from '../../../service/src/store/port.js';

const dirs: string[] = [];
const stores: EmbeddedStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {});
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const tempDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'embedded-'));
  dirs.push(dir);
  return dir;
};
const open = (dataDir: string, options: { checkpointEvery?: number; log?: (m: string) => void } = {}) => {
  const store = openEmbeddedStore({ dataDir, ...options });
  stores.push(store);
  return store;
};
const record = (imageId: string, itemId: string): ImageRecord => ({
  imageId,
  itemId,
  itemName: null,
  itemCode: null,
  file: `${imageId}.jpg`,
  sha256: 'x',
  bytes: 1,
  model: 'm',
  createdAt: new Date().toISOString(),
});
const axis = (i: number, dim = 8) => {
  const v = new Float32Array(dim);
  v[i % dim] = 1;
  return v;
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
    expect((await first.collection('items').searchItems(axis(1), 1))[0].record.itemId).toBe('item1');
    await first.close();
    stores.length = 0;
    expect(readdirSync(path.join(dir, 'index'))).toEqual([expect.stringMatching(/^c_m_8\.\d+\.usearch$/)]);

    const logs: string[] = [];
    const second = open(dir, { log: (m) => logs.push(m) });
    expect(await second.listAliases()).toEqual({ items: 'c_m_8' });
    const [hit] = await second.collection('items').searchItems(axis(2), 1);
    expect(hit).toMatchObject({ record: { itemId: 'item2' } });
    expect(hit.score).toBeCloseTo(1, 6);
    expect(logs.filter((m) => m.includes('Rebuilt'))).toEqual([]); // loaded, not rebuilt
  });

  it('loses no acknowledged write when the process is killed with SIGKILL', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, '../../support/embedded-writer.ts'), dir, '300'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('written') && resolve());
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));

    const store = open(dir);
    const collection = store.collection('c');
    expect(await collection.count()).toBe(300);
    const pages = [];
    for (
      let after: string | undefined, page;
      (page = await collection.scroll({ after, limit: 128 }));
      after = page.next
    ) {
      pages.push(...page.points);
      if (!page.next) break;
    }
    expect(pages.map((p) => p.record.imageId)).toEqual(
      Array.from({ length: 300 }, (_, i) => `img-${String(i).padStart(4, '0')}`),
    );
    const hits = await collection.searchItems(axis(3), 3);
    expect(hits).toHaveLength(3);
    expect(hits[0].score).toBeGreaterThan(0.99);
  });

  it('rebuilds the index from the database when the checkpoint file is damaged', async () => {
    const dir = tempDir();
    const first = open(dir);
    await first.createCollection('c', 8, 'm');
    await first
      .collection('c')
      .upsertMany([0, 1, 2, 3].map((i) => ({ record: record(`i${i}`, `item${i}`), vector: axis(i) })));
    await first.prepareIndex('c');
    await first.close();
    stores.length = 0;
    const [file] = readdirSync(path.join(dir, 'index'));
    writeFileSync(path.join(dir, 'index', file), 'garbage');

    const logs: string[] = [];
    const second = open(dir, { log: (m) => logs.push(m) });
    expect((await second.collection('c').searchItems(axis(3), 1))[0].record.itemId).toBe('item3');
    expect(logs.join('\n')).toMatch(/unreadable.*rebuilding/);
  });

  it("keeps two processes coherent: each sees the other's inserts and deletes before searching", async () => {
    const dir = tempDir();
    const writer = open(dir, { checkpointEvery: 3 });
    const reader = open(dir);
    await writer.createCollection('c', 8, 'm');
    await writer.collection('c').upsert(record('a', 'A'), axis(0));
    expect((await reader.collection('c').searchItems(axis(0), 5)).map((m) => m.record.itemId)).toEqual(['A']);
    // More writes than checkpointEvery: the writer checkpoints and prunes the log the reader had not applied.
    await writer.collection('c').searchItems(axis(0), 1);
    for (let i = 1; i < 8; i++) await writer.collection('c').upsert(record(`p${i}`, `P${i}`), axis(i));
    await writer.collection('c').deleteItem('A');
    const seen = await reader.collection('c').searchItems(axis(0), 10);
    expect(seen.map((m) => m.record.itemId)).not.toContain('A');
    expect(seen).toHaveLength(7);
    expect((await reader.collection('c').searchItems(axis(5), 1))[0].record.itemId).toBe('P5');
  });

  it('refuses vectors of the wrong width', async () => {
    const store = open(tempDir());
    await store.createCollection('c', 8, 'm');
    await expect(store.collection('c').upsert(record('a', 'A'), new Float32Array(4))).rejects.toThrow(
      /width 4 does not match collection c \(8\)/,
    );
  });

  it('makes an online backup that opens as a complete database', async () => {
    const dir = tempDir();
    const store = open(dir);
    await store.createCollection('c', 8, 'm');
    await store.collection('c').upsert(record('a', 'A'), axis(0));
    const copy = tempDir();
    await store.backupTo(path.join(copy, 'store.sqlite'));
    await store.collection('c').upsert(record('b', 'B'), axis(1)); // after the backup: not in the copy
    const restored = open(copy);
    expect(await restored.collection('c').count()).toBe(1);
  });
});
