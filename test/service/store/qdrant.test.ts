// The Qdrant adapter: the shared store contract against the strict Qdrant double (always) and against a
// real Qdrant when QDRANT_URL is set, then what is specific to Qdrant: every write waits, the request
// shapes (metadata, payload index, grouped search, one alias request), the URL and API key, and a
// Qdrant that is down becoming StoreUnavailableError.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../service/src/store/port.js';
import {
  centroidId,
  createQdrantStore,
  QdrantRequestError,
  type QdrantStore,
} from '../../../service/src/store/qdrant/store.js';
import { QdrantDouble } from '../../support/qdrant-double.js';
import { realQdrantSkipReason } from '../../support/real-qdrant.js';
import { describeStoreContract, makeRecord } from '../../support/store-contract.js';

describeStoreContract('qdrant adapter on the strict Qdrant double', async () => {
  const double = await QdrantDouble.start();
  const store = createQdrantStore({ url: double.url });
  return {
    store,
    cleanup: async () => {
      await store.close();
      try {
        double.assertNoViolations();
        expect(double.unwaitedWrites()).toEqual([]);
      } finally {
        await double.close();
      }
    },
  };
});

// Tests reach only loopback addresses, so a real Qdrant must be published on this host.
const realSkip = realQdrantSkipReason();
describeStoreContract(
  `qdrant adapter on a real Qdrant at QDRANT_URL`,
  async () => ({
    store: createQdrantStore({ url: process.env.QDRANT_URL!, apiKey: process.env.QDRANT_API_KEY || undefined }),
    cleanup: async () => {},
  }),
  { skip: realSkip },
);

describe('qdrant adapter specifics (on the double)', () => {
  let double: QdrantDouble;
  let store: QdrantStore;

  beforeEach(async () => {
    double = await QdrantDouble.start();
    store = createQdrantStore({ url: double.url, indexPollMs: 20 });
  });

  afterEach(async () => {
    await store.close();
    try {
      double.assertNoViolations();
    } finally {
      await double.close();
    }
  });

  const ops = (operationId: string) => double.requests.filter((r) => r.operationId === operationId);

  it('every write carries wait=true, and a write without it would be caught', async () => {
    await store.createCollection('items_m_4', 4, 'm');
    await store.setAlias('items', 'items_m_4');
    const c = store.collection('items');
    const [a, b] = [makeRecord('a', 1), makeRecord('b', 2)];
    await c.upsert(a, Float32Array.of(1, 0, 0, 0));
    await c.upsertMany([{ record: b, vector: Float32Array.of(0, 1, 0, 0) }]);
    await c.deleteImages([a.image_id]);
    await c.deleteItem('b');
    await c.deleteAll();
    const writes = double.writes();
    expect(new Set(writes.map((w) => w.operationId))).toEqual(
      new Set(['create_field_index', 'set_payload', 'upsert_points', 'delete_points']),
    );
    // 6 payload indexes, the image and centroid upserts, the deletes (images, then centroids left without images).
    expect(writes.length).toBeGreaterThanOrEqual(13);
    expect(double.unwaitedWrites()).toEqual([]);
    // The same check sees a write that does not wait (the client leaves wait unset for delete).
    await store.client.delete('items', { points: [randomUUID()] });
    expect(double.unwaitedWrites().map((w) => w.operationId)).toEqual(['delete_points']);
  });

  it(
    'createCollection makes a cosine collection with metadata {model, dim} and a keyword index on ' + 'item_id',
    async () => {
      await store.createCollection('items_effnet_1280', 1280, 'efficientnet_b0');
      const info = await store.client.getCollection('items_effnet_1280');
      expect(info.config.params.vectors).toEqual({ size: 1280, distance: 'Cosine' });
      expect(info.config.metadata).toEqual({ model: 'efficientnet_b0', dim: 1280 });
      expect(info.payload_schema.item_id?.data_type).toBe('keyword');
      const [index] = ops('create_field_index');
      expect(index.body).toEqual({ field_name: 'item_id', field_schema: 'keyword' });
      expect(index.query).toEqual({ wait: 'true' });
    },
  );

  it('stores one point per image: the image id as point id and a snake_case payload, vectors as floats', async () => {
    await store.createCollection('c', 3, 'm');
    const record = makeRecord('item/1', 7, { item_name: null });
    await store.collection('c').upsert(record, Float32Array.of(0.1, 0.2, 0.3));
    const [point] = await store.client.retrieve('c', { ids: [record.image_id], with_payload: true, with_vector: true });
    expect(point.id).toBe(record.image_id);
    expect(point.payload).toEqual({
      image_id: record.image_id,
      item_id: 'item/1',
      item_name: null,
      item_code: record.item_code,
      item_group: null,
      brand: null,
      disabled: false,
      kind: 'catalog',
      source: 'api',
      source_ref: null,
      phash: null,
      file: record.file,
      sha256: record.sha256,
      bytes: record.bytes,
      model: record.model,
      created_at: record.created_at,
    });
    const [upsert] = ops('upsert_points');
    const sent = (upsert.body as { points: Array<{ vector: number[] }> }).points[0].vector;
    // The float32 values go over the wire exactly (as the doubles that represent them).
    expect(sent).toEqual(Array.from(Float32Array.of(0.1, 0.2, 0.3)));
  });

  it('a centroid point is no image: image(id) and imagesByCode never answer one', async () => {
    await store.createCollection('c', 3, 'm');
    const record = makeRecord('item/1', 7, { item_code: 'SKU-7' });
    const c = store.collection('c');
    await c.upsert(record, Float32Array.of(0.1, 0.2, 0.3));
    const [centroid] = await store.client.retrieve('c', { ids: [centroidId('item/1', 'catalog')], with_payload: true });
    expect(centroid?.payload).toMatchObject({ item_code: 'SKU-7' }); // the centroid exists and carries the code
    expect(await c.image(centroidId('item/1', 'catalog'))).toBeUndefined();
    expect(await c.imagesByCode('SKU-7')).toEqual([record]);
  });

  it('searches with one queryGroups request grouped by item_id, one hit per group', async () => {
    await store.createCollection('c', 2, 'm');
    await store.collection('c').upsert(makeRecord('a', 1), Float32Array.of(1, 0));
    await store.collection('c').searchItems(Float32Array.of(1, 1), 7);
    const [search] = ops('query_points_groups');
    expect(search.body).toEqual({
      query: [1, 1],
      // Disabled items are left out unless a search asks; points without the field count as enabled.
      filter: {
        must: [],
        must_not: [
          { key: 'disabled', match: { value: true } },
          // Item centroids share the collection; image searches leave them out.
          { key: 'centroid_of_kind', match: { any: ['catalog', 'photo'] } },
        ],
      },
      group_by: 'item_id',
      group_size: 1,
      limit: 7,
      with_payload: true,
      with_vector: false,
    });
  });

  it('deletes items and everything by filter, keeping the collection, its index and its alias', async () => {
    await store.createCollection('c', 2, 'm');
    await store.setAlias('live', 'c');
    await store.collection('live').upsert(makeRecord('a', 1), Float32Array.of(1, 0));
    await store.collection('live').deleteItem('a');
    await store.collection('live').deleteAll();
    expect(
      ops('delete_points')
        .map((r) => r.body)
        .filter((body) => 'filter' in (body as object)),
    ).toEqual([{ filter: { must: [{ key: 'item_id', match: { value: 'a' } }] } }, { filter: {} }]);
    expect(double.state.collections.get('c')!.payloadIndexes.get('item_id')).toBe('keyword');
    expect(await store.listAliases()).toEqual({ live: 'c' });
  });

  it('setAlias is one update_aliases request: delete_alias (when the alias exists) and create_alias', async () => {
    await store.createCollection('old', 2, 'm');
    await store.createCollection('new', 2, 'm');
    await store.setAlias('items', 'old');
    await store.setAlias('items', 'new');
    expect(ops('update_aliases').map((r) => r.body)).toEqual([
      { actions: [{ create_alias: { alias_name: 'items', collection_name: 'old' } }] },
      {
        actions: [
          { delete_alias: { alias_name: 'items' } },
          { create_alias: { alias_name: 'items', collection_name: 'new' } },
        ],
      },
    ]);
  });

  it(
    'info() resolves an alias, counts exactly, and reports model null for a collection made by other ' + 'tools',
    async () => {
      await store.client.createCollection('legacy', { vectors: { size: 576, distance: 'Cosine' } });
      await store.setAlias('items', 'legacy');
      expect(await store.collection('items').info()).toEqual({
        name: 'legacy',
        dim: 576,
        model: null,
        modelSha256: null,
        points: 0,
      });
      expect(ops('count_points').at(-1)!.body).toEqual({
        filter: { must_not: [{ key: 'centroid_of_kind', match: { any: ['catalog', 'photo'] } }] },
        exact: true,
      });
    },
  );

  it('ensureSchema upgrades points of the original release: kind catalog, centroids built, once', async () => {
    await store.client.createCollection('old', { vectors: { size: 2, distance: 'Cosine' } });
    // The original service's payload: no kind, no centroid points.
    const legacy = (itemId: string, x: number, y: number) => ({
      id: randomUUID(),
      vector: [x, y],
      payload: { item_id: itemId, item_name: `Name ${itemId}`, item_code: null, file: `${itemId}/a.jpg` },
    });
    await store.client.upsert('old', {
      wait: true,
      points: [legacy('a', 1, 0), legacy('a', 0.9, 0.1), legacy('b', 0, 1)],
    });
    await store.ensureSchema('old');
    const collection = store.collection('old');
    expect((await collection.itemImages('a')).map((image) => image.kind)).toEqual(['catalog', 'catalog']);
    const centroids = await collection.centroidsOf(['a', 'b']);
    expect(centroids.map((c) => [c.item_id, c.kind, c.count]).sort()).toEqual([
      ['a', 'catalog', 2],
      ['b', 'catalog', 1],
    ]);
    const found = await collection.searchCentroids(Float32Array.of(0.1, 1), 'catalog', 5);
    expect(found[0]).toMatchObject({ item_id: 'b' });
    // A second start finds the centroids and leaves them alone.
    const upserts = ops('upsert_points').length;
    await store.ensureSchema('old');
    expect(ops('upsert_points').length).toBe(upserts);
    expect(await collection.countItems()).toBe(2);

    // Centroids of the release before items were counted have no marker: the next start rebuilds them.
    await store.client.setPayload('old', {
      payload: { counts_item: false },
      filter: { must: [{ key: 'centroid_of_kind', match: { any: ['catalog', 'photo'] } }] },
      wait: true,
    });
    expect(await collection.countItems()).toBe(0);
    await store.ensureSchema('old');
    expect(await collection.countItems()).toBe(2);
  });

  it('a 4xx that shows a bug in the request stays an error, not an outage', async () => {
    await store.createCollection('c', 2, 'm');
    const bad = makeRecord('a', 1, { image_id: 'not-a-uuid' });
    const error = await store
      .collection('c')
      .upsert(bad, Float32Array.of(1, 0))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QdrantRequestError);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
    expect((error as QdrantRequestError).status).toBe(400);
    expect((error as Error).message).toMatch(/not-a-uuid|uuid/i);
    // The double recorded the refusal; this test provoked it on purpose.
    expect(double.takeViolations()).toHaveLength(1);
  });

  it('prepareIndex waits until the collection is green, and fails on red', async () => {
    await store.createCollection('c', 2, 'm');
    double.setCollectionStatus('c', 'yellow');
    const started = Date.now();
    setTimeout(() => double.setCollectionStatus('c', 'green'), 200);
    await store.prepareIndex('c');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    double.setCollectionStatus('c', 'red');
    await expect(store.prepareIndex('c')).rejects.toThrow(/red/);
  });
});

describe('qdrant adapter: URL and API key', () => {
  let double: QdrantDouble;

  beforeEach(async () => {
    double = await QdrantDouble.start({ apiKey: 's3cret-key' });
  });

  afterEach(async () => {
    try {
      double.assertNoViolations();
    } finally {
      await double.close();
    }
  });

  it('talks plain http to the full URL it was given, sending the API key with every request', async () => {
    // The double speaks only http: had the client switched to https (its default with an API key
    // and a bare host), every request would fail the TLS handshake.
    const store = createQdrantStore({ url: double.url, apiKey: 's3cret-key' });
    await store.ping();
    await store.createCollection('c', 2, 'm');
    expect(double.requests.length).toBeGreaterThan(0);
    expect(double.requests.every((r) => r.apiKey === 's3cret-key')).toBe(true);
  });

  it('a wrong API key is StoreUnavailableError that names QDRANT_API_KEY', async () => {
    const store = createQdrantStore({ url: double.url, apiKey: 'wrong' });
    const error = await store.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/QDRANT_API_KEY/);
    expect((error as Error).message).not.toMatch(/wrong/);
  });

  it('a URL without a scheme is refused at construction with a message naming QDRANT_URL', () => {
    expect(() => createQdrantStore({ url: 'qdrant:6333' })).toThrow(/QDRANT_URL/);
    expect(() => createQdrantStore({ url: 'not a url' })).toThrow(/QDRANT_URL/);
  });
});

describe('qdrant adapter: Qdrant down', () => {
  let double: QdrantDouble;
  let store: QdrantStore;

  beforeEach(async () => {
    double = await QdrantDouble.start();
    store = createQdrantStore({ url: double.url, timeoutMs: 400 });
    await store.createCollection('c', 2, 'm');
  });

  afterEach(async () => {
    await double.up();
    try {
      double.assertNoViolations();
    } finally {
      await double.close();
    }
  });

  for (const [mode, cause] of [
    ['refuse', /does not answer/],
    ['hang', /does not answer/],
    ['error', /failed \(.*503/],
  ] as const) {
    it(
      `${mode}: every call fails with StoreUnavailableError naming QDRANT_URL, and works again when Qdrant is ` +
        `back`,
      async () => {
        await double.goDown(mode);
        const calls: Array<[string, () => Promise<unknown>]> = [
          ['ping', () => store.ping()],
          ['info', () => store.collection('c').info()],
          ['upsert', () => store.collection('c').upsert(makeRecord('a', 1), Float32Array.of(1, 0))],
          ['searchItems', () => store.collection('c').searchItems(Float32Array.of(1, 0), 5)],
          ['setAlias', () => store.setAlias('items', 'c')],
        ];
        for (const [name, call] of calls) {
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, name).toBeInstanceOf(StoreUnavailableError);
          expect((error as Error).message, name).toContain(`QDRANT_URL=${double.url}`);
          expect((error as Error).message, name).toMatch(cause);
        }
        await double.up();
        await expect(store.ping()).resolves.toBeUndefined();
        await expect(store.collection('c').count()).resolves.toBe(0);
      },
    );
  }
});
