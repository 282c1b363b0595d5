// The behaviour every VectorStore adapter must have, as one vitest suite that each adapter's test file
// runs against its own store (embedded on a temp dir; Qdrant through the double and, when QDRANT_URL is
// set, a real server). Only the port is used here, so the suite cannot favour one adapter.
//
// Every test works in collections it creates under a random prefix and deletes afterwards, so the
// suite can run against a shared real server without touching other data.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Collection, ImageRecord, SearchOptions, VectorStore } from '../../service/src/store/port.js';
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

    const newCollection = async (dim = 4, model = MODEL, modelSha256?: string): Promise<string> => {
      const name = `${prefix}_${created.length}`;
      created.push(name);
      await store.createCollection(name, dim, model, modelSha256);
      return name;
    };
    const aliasName = (suffix: string) => `${prefix}_alias_${suffix}`;

    describe('collections', () => {
      it(
        'createCollection records width and model; info and listCollections report them with the point ' + 'count',
        async () => {
          const name = await newCollection(4, 'model-a');
          const sha = 'ab'.repeat(32); // the model's identity by its weights, when the caller gives it
          const other = await newCollection(7, 'model-b', sha);
          expect(await store.collection(name).info()).toEqual({
            name,
            dim: 4,
            model: 'model-a',
            modelSha256: null,
            points: 0,
          });
          await store.collection(other).upsert(makeRecord('item', 1), seededVector(7, 1));
          const listed = (await store.listCollections()).filter((c) => c.name.startsWith(prefix));
          expect(listed).toEqual([
            { name, dim: 4, model: 'model-a', modelSha256: null, points: 0 },
            { name: other, dim: 7, model: 'model-b', modelSha256: sha, points: 1 },
          ]);
        },
      );

      it('an unknown name has no info and reads as empty; writes and searches on it are refused', async () => {
        const missing = store.collection(`${prefix}_missing`);
        expect(await missing.info()).toBeUndefined();
        expect(await missing.count()).toBe(0);
        expect(await missing.countItems()).toBe(0);
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

      it('imagesByCode lists the images of every item with exactly that code, oldest first', async () => {
        const c = store.collection(await newCollection());
        const shoeLate = makeRecord('shoe', 30, { item_code: 'SKU-1' });
        const shoeEarly = makeRecord('shoe', 10, { item_code: 'SKU-1' });
        const boot = makeRecord('boot', 20, { item_code: 'SKU-1' });
        await c.upsertMany(
          [shoeLate, shoeEarly, boot, makeRecord('sock', 5, { item_code: 'SKU-10' }), makeRecord('hat', 6)].map(
            (record, i) => ({ record, vector: seededVector(4, i + 1) }),
          ),
        );
        expect(await c.imagesByCode('SKU-1')).toEqual([shoeEarly, boot, shoeLate]);
        expect(await c.imagesByCode('sku-1')).toEqual([]); // exact, not case-folded
        expect(await c.imagesByCode('SKU-')).toEqual([]); // not a prefix search
        expect(await c.imagesByCode('shoe')).toEqual([]); // an item id is not a code
        await c.updateItem('boot', { item_code: 'SKU-2' });
        expect(await c.imagesByCode('SKU-1')).toEqual([shoeEarly, shoeLate]);
        expect(await store.collection(`${prefix}_missing`).imagesByCode('SKU-1')).toEqual([]);
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
        expect(await c.info()).toEqual({ name, dim: 4, model: MODEL, modelSha256: null, points: 0 });
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
        expect(await viaAlias.info()).toEqual({ name, dim: 4, model: 'model-a', modelSha256: null, points: 1 });
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
        expect(await store.collection(alias).info()).toEqual({
          name: first,
          dim: 4,
          model: 'old',
          modelSha256: null,
          points: 0,
        });
        await store.setAlias(alias, second);
        expect(await store.collection(alias).info()).toEqual({
          name: second,
          dim: 8,
          model: 'new',
          modelSha256: null,
          points: 0,
        });
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

    describe('kinds, item fields and filters', () => {
      const groups = ['Juice', 'Milk', 'Bread', 'Tools'];
      const brands = ['Arla', 'Oatly', 'Bosch'];
      /** 160 images of 40 items with groups, brands, kinds and every fifth item disabled. */
      const catalog = () =>
        Array.from({ length: 160 }, (_, i) => {
          const item = i % 40;
          return {
            record: makeRecord(`item-${item}`, i, {
              item_group: groups[item % 4],
              brand: item % 7 === 0 ? null : brands[item % 3],
              disabled: item % 5 === 4,
              kind: i % 3 === 0 ? 'photo' : 'catalog',
            }),
            vector: seededVector(8, i + 1),
          };
        });
      /** What searchItems must answer: each kept item's best image, best first (brute force). */
      const bruteForce = (
        points: ReturnType<typeof catalog>,
        query: Float32Array,
        limit: number,
        keep: (r: ImageRecord) => boolean,
      ) => {
        const best = new Map<string, { item: string; score: number }>();
        for (const p of points.filter((p) => keep(p.record))) {
          const score = cosine(query, p.vector);
          const seen = best.get(p.record.item_id);
          if (!seen || score > seen.score) best.set(p.record.item_id, { item: p.record.item_id, score });
        }
        return [...best.values()].sort((a, b) => b.score - a.score).slice(0, limit);
      };

      it('kind and item fields are stored and read back on every read path', async () => {
        const c = store.collection(await newCollection());
        const photo = makeRecord('A', 1, { kind: 'photo', item_group: 'Juice', brand: 'Arla', disabled: true });
        const erp = makeRecord('A', 2, { source: 'erpnext', source_ref: '/files/a.jpg', phash: '0123456789abcdef' });
        await c.upsertMany([
          { record: photo, vector: vec(1, 0, 0, 0) },
          { record: erp, vector: vec(0, 1, 0, 0) },
        ]);
        expect(await c.image(photo.image_id)).toEqual(photo);
        expect(await c.itemImages('A')).toEqual([photo, erp]);
        const page = await c.scroll({ limit: 10 });
        expect(page.points.map((p) => p.record).sort(byImageId)).toEqual([photo, erp].sort(byImageId));
        const [hit] = await c.searchItems(vec(1, 0, 0, 0), 1, { includeDisabled: true });
        expect(hit.record).toEqual(photo);
      });

      it('a filtered searchItems is exact: the brute-force answer among the kept items', async () => {
        const c = store.collection(await newCollection(8));
        const points = catalog();
        await c.upsertMany(points);
        const filters: Array<{ options: SearchOptions; keep: (r: ImageRecord) => boolean }> = [
          { options: {}, keep: (r) => !r.disabled },
          { options: { includeDisabled: true }, keep: () => true },
          { options: { filter: { item_group: ['Juice'] } }, keep: (r) => r.item_group === 'Juice' && !r.disabled },
          {
            options: { filter: { item_group: ['Juice', 'Tools'], brand: ['Arla'] } },
            keep: (r) => ['Juice', 'Tools'].includes(r.item_group!) && r.brand === 'Arla' && !r.disabled,
          },
          {
            options: { filter: { brand: ['Bosch'] }, includeDisabled: true },
            keep: (r) => r.brand === 'Bosch',
          },
          { options: { filter: { item_group: ['Nothing'] } }, keep: () => false },
        ];
        for (let q = 0; q < 5; q++) {
          const query = seededVector(8, 1000 + q);
          for (const { options, keep } of filters) {
            const expected = bruteForce(points, query, 5, keep);
            const got = await c.searchItems(query, 5, options);
            expect(got.map((r) => r.record.item_id)).toEqual(expected.map((e) => e.item));
            got.forEach((r, i) => expect(r.score).toBeCloseTo(expected[i].score, 4));
            got.forEach((r) => expect(keep(r.record)).toBe(true));
          }
        }
      });

      it('duplicate candidates: the same vector under another item scores 1, disabled items included', async () => {
        const c = store.collection(await newCollection());
        const original = makeRecord('A', 1, { disabled: true });
        const copy = makeRecord('B', 2);
        await c.upsertMany([
          { record: original, vector: vec(0.3, 0.4, 0.5, 0.1) },
          { record: copy, vector: vec(0.3, 0.4, 0.5, 0.1) },
          { record: makeRecord('C', 3), vector: vec(-1, 0, 0, 0) },
        ]);
        const found = await c.searchItems(vec(0.3, 0.4, 0.5, 0.1), 3, { includeDisabled: true });
        expect(
          found
            .slice(0, 2)
            .map((m) => m.record.item_id)
            .sort(),
        ).toEqual(['A', 'B']);
        found.slice(0, 2).forEach((m) => expect(m.score).toBeCloseTo(1, 5));
        expect((await c.searchItems(vec(0.3, 0.4, 0.5, 0.1), 3)).map((m) => m.record.item_id)).not.toContain('A');
      });

      it('updateItem changes the fields of every image of the item only, keeps kinds and vectors', async () => {
        const c = store.collection(await newCollection());
        const a1 = makeRecord('A', 1, { kind: 'photo', item_group: 'Juice' });
        const a2 = makeRecord('A', 2, { item_group: 'Juice' });
        const b1 = makeRecord('B', 3, { item_group: 'Juice' });
        await c.upsertMany([
          { record: a1, vector: vec(1, 0, 0, 0) },
          { record: a2, vector: vec(0, 1, 0, 0) },
          { record: b1, vector: vec(0, 0, 1, 0) },
        ]);
        expect(await c.updateItem('A', { item_name: 'Renamed', item_group: 'Milk', brand: 'Arla' })).toBe(2);
        expect(await c.itemImages('A')).toEqual([
          { ...a1, item_name: 'Renamed', item_group: 'Milk', brand: 'Arla' },
          { ...a2, item_name: 'Renamed', item_group: 'Milk', brand: 'Arla' },
        ]);
        expect(await c.image(b1.image_id)).toEqual(b1);
        expect(await c.updateItem('missing', { item_name: 'x' })).toBe(0);
        const milk = await c.searchItems(vec(0, 0, 1, 0), 5, { filter: { item_group: ['Milk'] } });
        expect(milk.map((r) => r.record.item_id)).toEqual(['A']);
        expect(await c.updateItem('A', { disabled: true })).toBe(2);
        expect((await c.searchItems(vec(1, 0, 0, 0), 5)).map((r) => r.record.item_id)).toEqual(['B']);
        expect(await c.searchCentroids(vec(1, 0, 0, 0), 'photo', 5)).toEqual([]);
        const [centroid] = await c.searchCentroids(vec(1, 0, 0, 0), 'photo', 5, { includeDisabled: true });
        expect(centroid.item_id).toBe('A');
        expect(centroid.score).toBeCloseTo(1, 5);
      });
    });

    describe('item centroids', () => {
      type Point = { record: ImageRecord; vector: Float32Array };
      /** Centroids the points imply: the normalised mean of each (item, kind)'s unit vectors. */
      const expectedCentroids = (points: Point[]) => {
        const sums = new Map<string, { item_id: string; kind: string; count: number; sum: number[] }>();
        for (const { record, vector } of points) {
          const key = `${record.item_id}\u0000${record.kind}`;
          const entry = sums.get(key) ?? { item_id: record.item_id, kind: record.kind, count: 0, sum: [] };
          unit(vector).forEach((x, i) => (entry.sum[i] = (entry.sum[i] ?? 0) + x));
          entry.count++;
          sums.set(key, entry);
        }
        return [...sums.values()]
          .map((e) => ({ item_id: e.item_id, kind: e.kind, count: e.count, vector: unit(Float32Array.from(e.sum)) }))
          .sort((a, b) => `${a.item_id} ${a.kind}`.localeCompare(`${b.item_id} ${b.kind}`));
      };
      const expectCentroids = async (c: Collection, live: Point[], items: string[]) => {
        const got = (await c.centroidsOf(items)).sort((a, b) =>
          `${a.item_id} ${a.kind}`.localeCompare(`${b.item_id} ${b.kind}`),
        );
        const want = expectedCentroids(live.filter((p) => items.includes(p.record.item_id)));
        expect(got.map(({ item_id, kind, count }) => ({ item_id, kind, count }))).toEqual(
          want.map(({ item_id, kind, count }) => ({ item_id, kind, count })),
        );
        got.forEach((g, i) => Array.from(g.vector).forEach((x, j) => expect(x).toBeCloseTo(want[i].vector[j], 4)));
        expect(await c.countItems()).toBe(new Set(live.map((p) => p.record.item_id)).size);
      };
      const point = (item: string, second: number, kind: 'catalog' | 'photo'): Point => ({
        record: makeRecord(item, second, { kind }),
        vector: seededVector(4, second + 7),
      });

      it('are kept up to date by every kind of write, and a rebuild gives the same', async () => {
        const c = store.collection(await newCollection());
        const items = ['A', 'B', 'C'];
        let live: Point[] = [point('A', 1, 'catalog')];
        await c.upsert(live[0].record, live[0].vector);
        await expectCentroids(c, live, items);

        const many = [point('A', 2, 'photo'), point('A', 3, 'photo'), point('B', 4, 'catalog'), point('C', 5, 'photo')];
        await c.upsertMany(many);
        live = [...live, ...many];
        await expectCentroids(c, live, items);

        // The same image id again, now a photo with another vector: it leaves the catalog centroid of A.
        const moved = { record: { ...live[0].record, kind: 'photo' as const }, vector: seededVector(4, 99) };
        await c.upsert(moved.record, moved.vector);
        live = [moved, ...live.slice(1)];
        await expectCentroids(c, live, items);

        await c.updateItem('A', { item_group: 'Milk' });
        live = live.map((p) => (p.record.item_id === 'A' ? { ...p, record: { ...p.record, item_group: 'Milk' } } : p));
        await expectCentroids(c, live, items);

        await c.deleteImages([many[1].record.image_id]);
        live = live.filter((p) => p.record.image_id !== many[1].record.image_id);
        await expectCentroids(c, live, items);

        await c.deleteItem('B');
        live = live.filter((p) => p.record.item_id !== 'B');
        await expectCentroids(c, live, items);
        expect(await c.searchCentroids(many[2].vector, 'catalog', 5)).toEqual([]);

        expect(await c.rebuildCentroids()).toBe(expectedCentroids(live).length);
        await expectCentroids(c, live, items);
        expect(await c.count()).toBe(live.length);

        await c.deleteAll();
        expect(await c.centroidsOf(items)).toEqual([]);
        expect(await c.sampleCentroids('photo', 10)).toEqual([]);
        expect(await c.rebuildCentroids()).toBe(0);
        const again = point('C', 6, 'catalog');
        await c.upsert(again.record, again.vector);
        await expectCentroids(c, [again], items);
      });

      it('searchCentroids ranks the items of one kind by cosine to their centroid, filtered', async () => {
        const c = store.collection(await newCollection());
        const points: Point[] = [
          { record: makeRecord('A', 1, { kind: 'photo', item_group: 'Juice' }), vector: vec(1, 0, 0, 0) },
          { record: makeRecord('A', 2, { kind: 'photo', item_group: 'Juice' }), vector: vec(0, 1, 0, 0) },
          { record: makeRecord('A', 3, { kind: 'catalog', item_group: 'Juice' }), vector: vec(0, 0, 1, 0) },
          { record: makeRecord('B', 4, { kind: 'photo', item_group: 'Milk' }), vector: vec(1, 0.1, 0, 0) },
          { record: makeRecord('C', 5, { kind: 'catalog', item_group: 'Milk' }), vector: vec(1, 0, 0, 0) },
        ];
        await c.upsertMany(points);
        const query = vec(1, 0.3, 0, 0);
        const photos = await c.searchCentroids(query, 'photo', 5);
        const centroidA = Float32Array.from([1, 1, 0, 0]);
        expect(photos.map((m) => m.item_id)).toEqual(['B', 'A']);
        expect(photos[0].score).toBeCloseTo(cosine(query, points[3].vector), 4);
        expect(photos[1].score).toBeCloseTo(cosine(query, centroidA), 4);
        expect((await c.searchCentroids(query, 'photo', 1)).map((m) => m.item_id)).toEqual(['B']);
        const catalogs = await c.searchCentroids(query, 'catalog', 5);
        expect(catalogs.map((m) => m.item_id)).toEqual(['C', 'A']);
        const juice = await c.searchCentroids(query, 'photo', 5, { filter: { item_group: ['Juice'] } });
        expect(juice.map((m) => m.item_id)).toEqual(['A']);

        const sample = await c.sampleCentroids('photo', 10);
        expect(sample).toHaveLength(2);
        const normals = sample.map((v) => Math.hypot(...v));
        normals.forEach((n) => expect(n).toBeCloseTo(1, 4));
        expect(await c.sampleCentroids('photo', 1)).toHaveLength(1);
      });

      it('scoreImages gives the best image of each kind of each listed item, exactly, best first', async () => {
        const c = store.collection(await newCollection());
        const points: Point[] = [
          { record: makeRecord('A', 1, { kind: 'photo' }), vector: vec(1, 0, 0, 0) },
          { record: makeRecord('A', 2, { kind: 'photo' }), vector: vec(0, 1, 0, 0) },
          { record: makeRecord('A', 3, { kind: 'catalog' }), vector: vec(0, 0, 1, 0) },
          { record: makeRecord('B', 4, { kind: 'catalog' }), vector: vec(1, 0.5, 0, 0) },
          { record: makeRecord('C', 5, { kind: 'catalog' }), vector: vec(1, 0, 0, 0) },
        ];
        await c.upsertMany(points);
        const query = vec(1, 0.2, 0.1, 0);
        const scored = await c.scoreImages(query, ['A', 'B', 'missing']);
        const expected = [points[0], points[2], points[3]]
          .map((p) => ({ record: p.record, score: cosine(query, p.vector) }))
          .sort((a, b) => b.score - a.score);
        expect(scored.map((m) => m.record)).toEqual(expected.map((e) => e.record));
        scored.forEach((m, i) => expect(m.score).toBeCloseTo(expected[i].score, 5));
        expect(await c.scoreImages(query, [])).toEqual([]);
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
