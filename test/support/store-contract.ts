// The behaviour every VectorStore adapter must have, as one vitest suite that each adapter's test file
// runs against its own store (embedded on a temp dir; Qdrant through the double and, when QDRANT_URL is
// set, a real server). Only the port is used here, so the suite cannot favour one adapter.
//
// Every test works in collections it creates under a random prefix and deletes afterwards, so the
// suite can run against a shared real server without touching other data.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImageRecord, VectorStore } from '../../service/src/store/port.js';
import { recordFrom } from '../../service/src/schemas/records.js';

export interface OpenedStore {
  store: VectorStore;
  /** Closes the store and releases what open() made (temp dirs, test servers). */
  cleanup: () => Promise<void>;
}

export interface StoreContractOptions {
  /** Set to skip the whole suite; the reason is printed and shown in the suite's name. */
  skip?: string;
}

const MODEL = 'contract-model';

/** A full record for `itemId`; `second` orders createdAt. */
export function makeRecord(itemId: string, second: number, overrides: Partial<ImageRecord> = {}): ImageRecord {
  const imageId = overrides.image_id ?? randomUUID();
  return recordFrom({
    image_id: imageId,
    item_id: itemId,
    item_name: `Name of ${itemId}`,
    item_code: `CODE-${second}`,
    file: `${imageId.slice(0, 2)}/${imageId}.jpg`,
    sha256: randomBytes(32).toString('hex'),
    bytes: 1000 + second,
    model: MODEL,
    created_at: new Date(Date.UTC(2024, 0, 1, 0, 0, second)).toISOString(),
    ...overrides,
  });
}

const vec = (...values: number[]) => Float32Array.from(values);

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

function unit(v: Float32Array): number[] {
  const length = Math.hypot(...v);
  return Array.from(v, (x) => x / length);
}

/** A deterministic pseudo-random vector (xorshift), so failures are reproducible. */
function seededVector(dim: number, seed: number): Float32Array {
  let state = seed * 2654435761 + 1;
  return Float32Array.from({ length: dim }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) / 2 ** 32) * 2 - 1;
  });
}

const byImageId = (a: { image_id: string }, b: { image_id: string }) =>
  a.image_id < b.image_id ? -1 : a.image_id > b.image_id ? 1 : 0;

export function describeStoreContract(
  label: string,
  open: () => Promise<OpenedStore>,
  options: StoreContractOptions = {},
): void {
  if (options.skip) console.warn(`[store contract] ${label}: skipped — ${options.skip}`);
  const title = options.skip ? `store contract: ${label} (skipped: ${options.skip})` : `store contract: ${label}`;

  describe.skipIf(options.skip !== undefined)(title, () => {
    let store: VectorStore;
    let cleanup: () => Promise<void>;
    let prefix: string;
    let created: string[];

    beforeEach(async () => {
      ({ store, cleanup } = await open());
      prefix = `contract_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
      created = [];
    });

    afterEach(async () => {
      for (const name of created) await store.deleteCollection(name);
      await cleanup();
    });

    const newCollection = async (dim = 4, model = MODEL): Promise<string> => {
      const name = `${prefix}_${created.length}`;
      created.push(name);
      await store.createCollection(name, dim, model);
      return name;
    };
    const aliasName = (suffix: string) => `${prefix}_alias_${suffix}`;

    describe('collections', () => {
      it(
        'createCollection records width and model; info and listCollections report them with the point ' + 'count',
        async () => {
          const name = await newCollection(4, 'model-a');
          const other = await newCollection(7, 'model-b');
          expect(await store.collection(name).info()).toEqual({ name, dim: 4, model: 'model-a', points: 0 });
          await store.collection(other).upsert(makeRecord('item', 1), seededVector(7, 1));
          const listed = (await store.listCollections()).filter((c) => c.name.startsWith(prefix));
          expect(listed).toEqual([
            { name, dim: 4, model: 'model-a', points: 0 },
            { name: other, dim: 7, model: 'model-b', points: 1 },
          ]);
        },
      );

      it('an unknown name has no info and reads as empty; writes and searches on it are refused', async () => {
        const missing = store.collection(`${prefix}_missing`);
        expect(await missing.info()).toBeUndefined();
        expect(await missing.count()).toBe(0);
        expect(await missing.itemImages('x')).toEqual([]);
        expect(await missing.image(randomUUID())).toBeUndefined();
        expect(await missing.scroll({ limit: 10 })).toEqual({ points: [] });
        await expect(missing.upsert(makeRecord('x', 1), vec(1, 0, 0, 0))).rejects.toThrow();
        await expect(missing.searchItems(vec(1, 0, 0, 0), 5)).rejects.toThrow();
      });

      it('createCollection refuses an existing name and the name of an alias', async () => {
        const name = await newCollection();
        await expect(store.createCollection(name, 4, MODEL)).rejects.toThrow();
        const alias = aliasName('taken');
        await store.setAlias(alias, name);
        await expect(store.createCollection(alias, 4, MODEL)).rejects.toThrow();
        expect(await store.listAliases()).toMatchObject({ [alias]: name });
      });

      it(
        'deleteCollection removes the collection, its points and its aliases; an unknown name is a ' + 'no-op',
        async () => {
          const name = await newCollection();
          const alias = aliasName('gone');
          await store.collection(name).upsert(makeRecord('a', 1), vec(1, 0, 0, 0));
          await store.setAlias(alias, name);
          await store.deleteCollection(name);
          expect(await store.collection(name).info()).toBeUndefined();
          expect(await store.collection(alias).info()).toBeUndefined();
          expect(await store.listAliases()).not.toHaveProperty(alias);
          expect((await store.listCollections()).map((c) => c.name)).not.toContain(name);
          await expect(store.deleteCollection(`${prefix}_never_existed`)).resolves.toBeUndefined();
        },
      );
    });

    describe('points', () => {
      it('upsert stores every field exactly; the same image id again replaces the point', async () => {
        const c = store.collection(await newCollection());
        const first = makeRecord('item-1', 1);
        await c.upsert(first, vec(1, 2, 3, 4));
        expect(await c.image(first.image_id)).toEqual(first);
        const replaced = {
          ...first,
          item_name: null,
          item_code: null,
          file: 'zz/other.png',
          bytes: 77,
          created_at: '2025-02-03T04:05:06.007Z',
        };
        await c.upsert(replaced, vec(4, 3, 2, 1));
        await c.upsert(replaced, vec(4, 3, 2, 1));
        expect(await c.count()).toBe(1);
        expect(await c.image(first.image_id)).toEqual(replaced);
        expect(await c.itemImages('item-1')).toEqual([replaced]);
        const [match] = await c.searchItems(vec(4, 3, 2, 1), 5);
        expect(match.score).toBeCloseTo(1, 5);
        expect(await c.image(randomUUID())).toBeUndefined();
      });

      it('upsertMany writes 600 points (more than one request batch) and each is readable', async () => {
        const c = store.collection(await newCollection());
        const points = Array.from({ length: 600 }, (_, i) => ({
          record: makeRecord(`item-${i % 50}`, i),
          vector: seededVector(4, i + 1),
        }));
        await c.upsertMany(points);
        expect(await c.count()).toBe(600);
        expect((await c.info())!.points).toBe(600);
        const sample = points[437].record;
        expect(await c.image(sample.image_id)).toEqual(sample);
        expect((await c.itemImages('item-7')).map((r) => r.image_id)).toEqual(
          points.filter((p) => p.record.item_id === 'item-7').map((p) => p.record.image_id),
        );
        await expect(c.upsertMany([])).resolves.toBeUndefined();
      });

      it('a vector of the wrong width is refused and nothing is written', async () => {
        const c = store.collection(await newCollection(4));
        await expect(c.upsert(makeRecord('a', 1), vec(1, 2, 3))).rejects.toThrow();
        await expect(c.upsertMany([{ record: makeRecord('b', 2), vector: vec(1, 2, 3, 4, 5) }])).rejects.toThrow();
        await expect(c.searchItems(vec(1, 2, 3), 5)).rejects.toThrow();
        expect(await c.count()).toBe(0);
      });

      it("itemImages lists one item's images oldest first, and [] for an unknown item", async () => {
        const c = store.collection(await newCollection());
        const late = makeRecord('shoe', 30);
        const early = makeRecord('shoe', 10);
        const middle = makeRecord('shoe', 20);
        await c.upsert(late, vec(1, 0, 0, 0));
        await c.upsert(makeRecord('sock', 5), vec(0, 1, 0, 0));
        await c.upsertMany([
          { record: early, vector: vec(0, 0, 1, 0) },
          { record: middle, vector: vec(0, 0, 0, 1) },
        ]);
        expect(await c.itemImages('shoe')).toEqual([early, middle, late]);
        expect(await c.itemImages('sho')).toEqual([]);
        expect(await c.itemImages('')).toEqual([]);
      });

      it('deleteImages removes exactly the listed images and ignores unknown ids', async () => {
        const c = store.collection(await newCollection());
        const [a, b, d] = [makeRecord('x', 1), makeRecord('x', 2), makeRecord('y', 3)];
        await c.upsertMany([a, b, d].map((record, i) => ({ record, vector: seededVector(4, i + 1) })));
        await c.deleteImages([a.image_id, randomUUID()]);
        await c.deleteImages([]);
        expect(await c.count()).toBe(2);
        expect(await c.image(a.image_id)).toBeUndefined();
        expect(await c.itemImages('x')).toEqual([b]);
        expect(await c.itemImages('y')).toEqual([d]);
      });

      it('deleteItem removes every image of that item and nothing else', async () => {
        const c = store.collection(await newCollection());
        const keep = makeRecord('keep', 1);
        await c.upsertMany([
          { record: makeRecord('drop', 1), vector: vec(1, 0, 0, 0) },
          { record: makeRecord('drop', 2), vector: vec(0.9, 0.1, 0, 0) },
          { record: keep, vector: vec(0, 1, 0, 0) },
        ]);
        await c.deleteItem('drop');
        await c.deleteItem('never-there');
        expect(await c.count()).toBe(1);
        expect(await c.itemImages('drop')).toEqual([]);
        const results = await c.searchItems(vec(1, 0, 0, 0), 5);
        expect(results.map((r) => r.record)).toEqual([keep]);
      });

      it('deleteAll empties the collection but keeps it, and its alias, usable', async () => {
        const name = await newCollection();
        const alias = aliasName('wipe');
        await store.setAlias(alias, name);
        const c = store.collection(alias);
        await c.upsertMany(
          Array.from({ length: 20 }, (_, i) => ({ record: makeRecord(`i${i}`, i), vector: seededVector(4, i + 1) })),
        );
        await c.deleteAll();
        expect(await c.count()).toBe(0);
        expect(await c.info()).toEqual({ name, dim: 4, model: MODEL, points: 0 });
        expect(await c.searchItems(vec(1, 0, 0, 0), 5)).toEqual([]);
        const again = makeRecord('after', 1);
        await c.upsert(again, vec(0, 0, 1, 0));
        expect(await store.collection(name).itemImages('after')).toEqual([again]);
      });

      it(
        'item ids with slashes, dot segments, unicode, quotes and 500 characters round-trip through payloads ' +
          'and filters',
        async () => {
          const c = store.collection(await newCollection());
          const ids = [
            'a/b/../c',
            '../../etc/passwd',
            'ünïcödé 商品 🛒',
            'quote"\'\\back`$(x)',
            '  spaced  ',
            'x'.repeat(500),
            'x'.repeat(499),
          ];
          const records = ids.map((id, i) => makeRecord(id, i, { item_name: `名前 ${i} /\\`, item_code: `c/${i}` }));
          await c.upsertMany(records.map((record, i) => ({ record, vector: seededVector(4, i + 10) })));
          for (const [i, id] of ids.entries()) expect(await c.itemImages(id)).toEqual([records[i]]);
          const found = await c.searchItems(seededVector(4, 12), ids.length);
          expect(found.map((m) => m.record.item_id).sort()).toEqual([...ids].sort());
          expect(found[0].record).toEqual(records[2]);
          await c.deleteItem('x'.repeat(500));
          expect(await c.itemImages('x'.repeat(500))).toEqual([]);
          expect(await c.itemImages('x'.repeat(499))).toEqual([records[6]]);
          expect(await c.count()).toBe(ids.length - 1);
        },
      );
    });

    describe('searchItems', () => {
      it('returns one row per item with its best image, best first, scored by cosine similarity', async () => {
        const c = store.collection(await newCollection());
        const query = vec(1, 0.2, 0, 0);
        const a1 = { record: makeRecord('A', 1), vector: vec(0, 1, 0, 0) };
        const a2 = { record: makeRecord('A', 2), vector: vec(1, 0.25, 0.05, 0) };
        const b1 = { record: makeRecord('B', 3), vector: vec(1, 0, 1, 0) };
        const b2 = { record: makeRecord('B', 4), vector: vec(0.2, 0, 1, 1) };
        const c1 = { record: makeRecord('C', 5), vector: vec(-1, 0, 0, 0.5) };
        await c.upsertMany([a1, a2, b1, b2, c1]);
        const results = await c.searchItems(query, 10);
        expect(results.map((r) => r.record)).toEqual([a2.record, b1.record, c1.record]);
        const expected = [a2, b1, c1].map((p) => cosine(query, p.vector));
        results.forEach((r, i) => expect(r.score).toBeCloseTo(expected[i], 5));
        expect(results[2].score).toBeLessThan(0);
        // Cosine ignores length: a scaled query scores the same.
        const scaled = await c.searchItems(
          query.map((x) => x * 7),
          10,
        );
        scaled.forEach((r, i) => expect(r.score).toBeCloseTo(expected[i], 5));
      });

      it('limit caps the number of items; an empty collection or a limit of 0 gives []', async () => {
        const c = store.collection(await newCollection());
        expect(await c.searchItems(vec(1, 0, 0, 0), 5)).toEqual([]);
        await c.upsertMany(
          Array.from({ length: 30 }, (_, i) => ({
            record: makeRecord(`item-${i % 10}`, i),
            vector: seededVector(4, i + 1),
          })),
        );
        const query = seededVector(4, 99);
        const top3 = await c.searchItems(query, 3);
        expect(top3).toHaveLength(3);
        const all = await c.searchItems(query, 100);
        expect(all).toHaveLength(10);
        expect(new Set(all.map((r) => r.record.item_id)).size).toBe(10);
        expect(top3.map((r) => r.record)).toEqual(all.slice(0, 3).map((r) => r.record));
        for (let i = 1; i < all.length; i++) expect(all[i - 1].score).toBeGreaterThanOrEqual(all[i].score);
        expect(await c.searchItems(query, 0)).toEqual([]);
      });

      it('finds the exact image at the production width (1280) with score 1', async () => {
        const c = store.collection(await newCollection(1280));
        const points = Array.from({ length: 40 }, (_, i) => ({
          record: makeRecord(`p${i}`, i),
          vector: seededVector(1280, i + 1),
        }));
        await c.upsertMany(points);
        const [best, second] = await c.searchItems(points[17].vector, 2);
        expect(best.record).toEqual(points[17].record);
        expect(best.score).toBeCloseTo(1, 5);
        expect(second.score).toBeCloseTo(
          cosine(points[17].vector, points.find((p) => p.record.image_id === second.record.image_id)!.vector),
          5,
        );
      });
    });

    describe('scroll', () => {
      it('pages cover every point exactly once, in image id order, and the last page has no next', async () => {
        const c = store.collection(await newCollection());
        const records = Array.from({ length: 25 }, (_, i) => makeRecord(`item-${i % 4}`, i));
        await c.upsertMany(records.map((record, i) => ({ record, vector: seededVector(4, i + 1) })));
        const seen: ImageRecord[] = [];
        const sizes: number[] = [];
        let after: string | undefined;
        for (let guard = 0; guard < 10; guard++) {
          const page = await c.scroll({ after, limit: 7 });
          seen.push(...page.points.map((p) => p.record));
          sizes.push(page.points.length);
          for (const p of page.points) expect(p.vector).toBeUndefined();
          if (!page.next) break;
          expect(page.next).toBe(page.points[page.points.length - 1].record.image_id);
          after = page.next;
        }
        expect(sizes).toEqual([7, 7, 7, 4]);
        expect(seen).toEqual([...records].sort(byImageId));
      });

      it('a page that ends exactly at the last point has no next', async () => {
        const c = store.collection(await newCollection());
        const records = Array.from({ length: 6 }, (_, i) => makeRecord('i', i));
        await c.upsertMany(records.map((record, i) => ({ record, vector: seededVector(4, i + 1) })));
        const first = await c.scroll({ limit: 3 });
        const second = await c.scroll({ after: first.next, limit: 3 });
        expect(second.next).toBeUndefined();
        expect([...first.points, ...second.points].map((p) => p.record)).toEqual([...records].sort(byImageId));
        expect(await c.scroll({ limit: 6 })).toMatchObject({ next: undefined });
      });

      it('withVectors returns the stored vectors at unit length', async () => {
        const c = store.collection(await newCollection());
        const vectors = [vec(3, 0, 4, 0), vec(1, 1, 1, 1), vec(-2, 0.5, 0, 9)];
        const records = vectors.map((_, i) => makeRecord('v', i));
        await c.upsertMany(records.map((record, i) => ({ record, vector: vectors[i] })));
        const page = await c.scroll({ limit: 10, withVectors: true });
        expect(page.points).toHaveLength(3);
        for (const point of page.points) {
          const original = vectors[records.findIndex((r) => r.image_id === point.record.image_id)];
          expect(point.vector).toBeInstanceOf(Float32Array);
          Array.from(point.vector!).forEach((x, i) => expect(x).toBeCloseTo(unit(original)[i], 5));
        }
      });

      it('continues after an image id that was deleted meanwhile', async () => {
        const c = store.collection(await newCollection());
        const records = Array.from({ length: 9 }, (_, i) => makeRecord('i', i)).sort(byImageId);
        await c.upsertMany(records.map((record, i) => ({ record, vector: seededVector(4, i + 1) })));
        const first = await c.scroll({ limit: 4 });
        await c.deleteImages([first.next!]);
        const rest = await c.scroll({ after: first.next, limit: 10 });
        expect(rest.points.map((p) => p.record)).toEqual(records.slice(4));
        expect(rest.next).toBeUndefined();
      });
    });

    describe('aliases', () => {
      it('setAlias creates an alias that info() resolves and that reads and writes go through', async () => {
        const name = await newCollection(4, 'model-a');
        const alias = aliasName('live');
        await store.setAlias(alias, name);
        expect(await store.listAliases()).toMatchObject({ [alias]: name });
        const viaAlias = store.collection(alias);
        expect(viaAlias.name).toBe(alias);
        const record = makeRecord('i', 1);
        await viaAlias.upsert(record, vec(1, 0, 0, 0));
        expect(await viaAlias.info()).toEqual({ name, dim: 4, model: 'model-a', points: 1 });
        expect(await store.collection(name).image(record.image_id)).toEqual(record);
        expect((await viaAlias.searchItems(vec(1, 0, 0, 0), 1))[0].record).toEqual(record);
        expect((await store.listCollections()).map((c) => c.name)).not.toContain(alias);
      });

      it('setAlias moves an alias in one step: concurrent readers always find one of the two collections', async () => {
        const first = await newCollection(4, 'old');
        const second = await newCollection(8, 'new');
        const alias = aliasName('switch');
        await store.setAlias(alias, first);
        let switching = true;
        const seen: Array<string | undefined> = [];
        const reader = (async () => {
          while (switching) seen.push((await store.collection(alias).info())?.name);
        })();
        for (let i = 0; i < 6; i++) await store.setAlias(alias, i % 2 === 0 ? second : first);
        switching = false;
        await reader;
        expect(seen.length).toBeGreaterThan(0);
        expect(seen.every((name) => name === first || name === second)).toBe(true);
        expect(await store.collection(alias).info()).toEqual({ name: first, dim: 4, model: 'old', points: 0 });
        await store.setAlias(alias, second);
        expect(await store.collection(alias).info()).toEqual({ name: second, dim: 8, model: 'new', points: 0 });
        const aliases = await store.listAliases();
        expect(Object.entries(aliases).filter(([a]) => a === alias)).toEqual([[alias, second]]);
      });

      it('setAlias to a missing collection, or onto a collection name, is refused and changes nothing', async () => {
        const name = await newCollection();
        const other = await newCollection();
        const alias = aliasName('stay');
        await store.setAlias(alias, name);
        await expect(store.setAlias(alias, `${prefix}_missing`)).rejects.toThrow();
        await expect(store.setAlias(other, name)).rejects.toThrow();
        await expect(store.setAlias(aliasName('to-alias'), alias)).rejects.toThrow();
        const aliases = await store.listAliases();
        expect(aliases[alias]).toBe(name);
        expect(aliases).not.toHaveProperty(other);
        expect(aliases).not.toHaveProperty(aliasName('to-alias'));
        expect((await store.collection(other).info())!.name).toBe(other);
      });
    });

    describe('store', () => {
      it('ping answers and prepareIndex returns for a collection with points', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        const name = await newCollection();
        await store
          .collection(name)
          .upsertMany(
            Array.from({ length: 10 }, (_, i) => ({ record: makeRecord('i', i), vector: seededVector(4, i + 1) })),
          );
        await expect(store.prepareIndex(name)).resolves.toBeUndefined();
        await expect(store.prepareIndex(`${prefix}_missing`)).rejects.toThrow();
      });
    });
  });
}
