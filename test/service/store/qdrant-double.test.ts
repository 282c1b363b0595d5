// The Qdrant double is only worth its tests if it refuses what Qdrant refuses and behaves like Qdrant
// where the project relies on it. These tests speak raw HTTP to it (and the real client where that is
// what the operations scripts will do), on loopback only.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QdrantDouble } from '../../support/qdrant-double.js';
import { loadQdrantOpenApi } from '../../support/qdrant-openapi.js';

const loaded = loadQdrantOpenApi();
const specSkip = 'skipped' in loaded ? loaded.skipped : undefined;
if (specSkip) console.warn(`[qdrant-double tests] spec refusal tests skipped: ${specSkip}`);

let double: QdrantDouble;

async function call(method: string, pathAndQuery: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${double.url}${pathAndQuery}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, json: json as { result?: unknown; status?: unknown } };
}

const vector4 = (seed: number) => [Math.sin(seed), Math.cos(seed), Math.sin(seed * 2), 1];
const point = (item: string, seed: number, id = randomUUID()) => ({
  id,
  vector: vector4(seed),
  payload: { item_id: item },
});

async function collectionWithPoints(name: string, points: Array<ReturnType<typeof point>>) {
  expect((await call('PUT', `/collections/${name}`, { vectors: { size: 4, distance: 'Cosine' } })).status).toBe(200);
  expect((await call('PUT', `/collections/${name}/points?wait=true`, { points })).status).toBe(200);
}

describe('qdrant double', () => {
  beforeEach(async () => {
    double = await QdrantDouble.start();
  });

  afterEach(async () => {
    try {
      double.assertNoViolations();
    } finally {
      await double.close();
    }
  });

  describe.skipIf(specSkip !== undefined)(
    `refuses what the Qdrant OpenAPI spec refuses${specSkip ? ` (skipped: ${specSkip})` : ''}`,
    () => {
      const cases: Array<[string, string, string, unknown, number, RegExp]> = [
        [
          'a wrong type (size as a string)',
          'PUT',
          '/collections/fresh',
          { vectors: { size: 'four', distance: 'Cosine' } },
          400,
          /size must be integer/,
        ],
        [
          'a value outside an enum (distance "cosine")',
          'PUT',
          '/collections/fresh',
          { vectors: { size: 4, distance: 'cosine' } },
          400,
          /allowed values/,
        ],
        [
          'an unknown field inside a filter (additionalProperties: false)',
          'POST',
          '/collections/c/points/scroll',
          { filter: { must: [], bogus: 1 } },
          400,
          /bogus/,
        ],
        ['a limit below its minimum', 'POST', '/collections/c/points/scroll', { limit: 0 }, 422, /limit must be >= 1/],
        [
          'a point id that is neither an integer nor a UUID',
          'PUT',
          '/collections/c/points?wait=true',
          { points: [{ id: 'item-1', vector: [1, 0, 0, 0] }] },
          400,
          /uuid/,
        ],
        ['a negative point id', 'POST', '/collections/c/points', { ids: [-1] }, 400, /ids/],
        [
          'an alias action without its collection',
          'POST',
          '/collections/aliases',
          { actions: [{ create_alias: { alias_name: 'a' } }] },
          400,
          /anyOf|collection_name/,
        ],
        [
          'a payload index without field_name',
          'PUT',
          '/collections/c/index?wait=true',
          { field_schema: 'keyword' },
          400,
          /field_name/,
        ],
        [
          'a grouped query without group_by',
          'POST',
          '/collections/c/points/query/groups',
          { query: [1, 0, 0, 0], group_size: 1 },
          400,
          /group_by/,
        ],
        ['wait given as yes', 'PUT', '/collections/c/points?wait=yes', { points: [] }, 400, /wait/],
        [
          'a snapshot recovery location that is not a URI',
          'PUT',
          '/collections/c/snapshots/recover',
          { location: 'not a uri' },
          400,
          /location/,
        ],
      ];
      for (const [what, method, target, body, status, message] of cases) {
        it(`refuses ${what} with ${status}, in Qdrant's error shape, and records the violation`, async () => {
          await collectionWithPoints('c', [point('a', 1)]);
          const response = await call(method, target, body);
          expect(response.status).toBe(status);
          expect(response.json).toEqual({
            status: { error: expect.stringMatching(message) },
            time: expect.any(Number),
          });
          const violations = double.takeViolations();
          expect(violations).toHaveLength(1);
          expect(violations[0]).toMatchObject({ kind: 'refused', method, status });
          expect(await call('POST', '/collections/c/points/count', {})).toMatchObject({
            json: { result: { count: 1 } },
          });
        });
      }

      it(
        'refuses fields and query parameters Qdrant would silently ignore (a misspelled wait, a misspelled ' +
          'metadata)',
        async () => {
          await collectionWithPoints('c', []);
          expect((await call('PUT', '/collections/c/points?wiat=true', { points: [point('a', 1)] })).status).toBe(400);
          expect(
            (await call('PUT', '/collections/d', { vectors: { size: 4, distance: 'Cosine' }, metdata: {} })).status,
          ).toBe(400);
          expect((await call('POST', '/collections/c/snapshots?timeout=5')).status).toBe(400);
          expect(double.takeViolations().map((v) => v.message)).toEqual([
            expect.stringMatching(/unknown parameter `wiat`/),
            expect.stringMatching(/unknown field\(s\) `metdata`/),
            expect.stringMatching(/unknown parameter `timeout`/),
          ]);
          expect((await call('POST', '/collections/c/points/count', {})).json.result).toEqual({ count: 0 });
        },
      );

      it('answers a valid operation it does not implement with 501 and a violation, never a fake success', async () => {
        await collectionWithPoints('c', [point('a', 1)]);
        const search = await call('POST', '/collections/c/points/search', { vector: [1, 0, 0, 0], limit: 3 });
        expect(search.status).toBe(501);
        const dot = await call('PUT', '/collections/dot', { vectors: { size: 4, distance: 'Dot' } });
        expect(dot.status).toBe(501);
        expect(double.takeViolations().map((v) => v.kind)).toEqual(['not-implemented', 'not-implemented']);
      });

      it(
        'accepts what the client sends for every implemented operation, and its own answers fit the ' + 'spec',
        async () => {
          const client = new QdrantClient({ url: double.url, checkCompatibility: false });
          await client.api().createCollection({
            collection_name: 'c',
            vectors: { size: 4, distance: 'Cosine' },
            metadata: { model: 'm', dim: 4 },
          });
          await client.createPayloadIndex('c', { field_name: 'item_id', field_schema: 'keyword', wait: true });
          const ids = [randomUUID(), randomUUID(), randomUUID()];
          await client.upsert('c', {
            wait: true,
            points: ids.map((id, i) => ({ id, vector: vector4(i), payload: { item_id: `i${i % 2}` } })),
          });
          await client.upsert('c', {
            wait: true,
            batch: { ids: [7], vectors: [vector4(9)], payloads: [{ item_id: 'n' }] },
          });
          await client.setPayload('c', { payload: { extra: 1 }, points: [7], wait: true });
          await client.overwritePayload('c', { payload: { item_id: 'n' }, points: [7], wait: true });
          expect(await client.getCollection('c')).toMatchObject({
            points_count: 4,
            config: { metadata: { model: 'm', dim: 4 } },
          });
          expect(await client.collectionExists('c')).toEqual({ exists: true });
          expect((await client.getCollections()).collections).toEqual([{ name: 'c' }]);
          expect(await client.retrieve('c', { ids: [7], with_payload: true })).toEqual([
            { id: 7, payload: { item_id: 'n' } },
          ]);
          const scrolled = await client.scroll('c', { limit: 2, with_payload: false });
          expect(scrolled.points.map((p) => p.id)).toEqual([7, [...ids].sort()[0]]);
          expect(
            await client.count('c', {
              filter: { must: [{ key: 'item_id', match: { any: ['i0', 'i1'] } }] },
              exact: true,
            }),
          ).toEqual({ count: 3 });
          const groups = await client.queryGroups('c', {
            query: { nearest: vector4(0) },
            group_by: 'item_id',
            group_size: 2,
            limit: 2,
            with_payload: true,
          });
          expect(groups.groups.map((g) => g.id)).toEqual(['i0', 'i1']);
          expect(groups.groups[0].hits[0]).toMatchObject({ id: ids[0], score: expect.closeTo(1, 5) });
          const searched = await client.searchPointGroups('c', {
            vector: vector4(1),
            group_by: 'item_id',
            group_size: 1,
            limit: 1,
          });
          expect(searched.groups[0]).toMatchObject({ id: 'i1', hits: [{ id: ids[1] }] });
          await client.updateCollectionAliases({
            actions: [{ create_alias: { alias_name: 'live', collection_name: 'c' } }],
          });
          await client.updateCollectionAliases({
            actions: [{ rename_alias: { old_alias_name: 'live', new_alias_name: 'items' } }],
          });
          expect(await client.getAliases()).toEqual({ aliases: [{ alias_name: 'items', collection_name: 'c' }] });
          expect(await client.getCollectionAliases('c')).toEqual({
            aliases: [{ alias_name: 'items', collection_name: 'c' }],
          });
          await client.delete('c', {
            wait: true,
            filter: { must_not: [{ has_id: [7] }], must: [{ key: 'item_id', match: { value: 'i1' } }] },
          });
          expect(await client.count('c', { exact: true })).toEqual({ count: 3 });
          expect(await client.versionInfo()).toMatchObject({ version: '1.18.3' });
          expect(await client.deleteCollection('c')).toBe(true);
          expect(await client.deleteCollection('c')).toBe(false);
          expect(await client.getAliases()).toEqual({ aliases: [] });
          expect(double.unwaitedWrites()).toEqual([]);
        },
      );
    },
  );

  describe('routes and hand checks (with or without the spec)', () => {
    it('refuses unknown paths (404) and unknown methods on known paths (405) as violations', async () => {
      expect((await call('GET', '/collections/c/nonsense')).status).toBe(404);
      expect((await call('PATCH', '/aliases')).status).toBe(405);
      expect(double.takeViolations().map((v) => v.kind)).toEqual(['unknown-route', 'unknown-route']);
    });

    it(
      'without the spec it still refuses missing fields, and answers a wrong width or a missing collection ' +
        'like Qdrant',
      async () => {
        const bare = await QdrantDouble.start({ specPath: null });
        try {
          const raw = (method: string, target: string, body?: unknown) =>
            fetch(`${bare.url}${target}`, {
              method,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body),
            }).then(async (r) => ({ status: r.status, json: (await r.json()) as { status: { error: string } } }));
          expect((await raw('PUT', '/collections/c', { vectors: { size: 4, distance: 'Cosine' } })).status).toBe(200);
          expect(
            (await raw('PUT', '/collections/c/points?wait=true', { points: [{ id: 1 }] })).json.status.error,
          ).toMatch(/missing field `vector`/);
          expect((await raw('PUT', '/collections/c/points?wait=true', {})).json.status.error).toMatch(
            /missing field `points`/,
          );
          expect(
            (await raw('PUT', '/collections/c/points?wait=true', { points: [{ id: 'x', vector: [1, 0, 0, 0] }] })).json
              .status.error,
          ).toMatch(/not a valid point ID/);
          expect(bare.takeViolations().map((v) => v.status)).toEqual([400, 400, 400]);
          const wide = await raw('PUT', '/collections/c/points?wait=true', { points: [{ id: 1, vector: [1, 0, 0] }] });
          expect(wide).toEqual({
            status: 400,
            json: { status: { error: 'Wrong input: Vector dimension error: expected dim: 4, got 3' }, time: 0 },
          });
          expect((await raw('POST', '/collections/nope/points/count', {})).status).toBe(404);
          // Refusals Qdrant gives to valid requests are not violations.
          expect(bare.violations).toEqual([]);
          expect(bare.errors.map((e) => e.status)).toEqual([400, 404]);
        } finally {
          await bare.close();
        }
      },
    );

    it('refuses a body above the request size limit with 413', async () => {
      const small = await QdrantDouble.start({ maxRequestBytes: 1000 });
      try {
        const response = await fetch(`${small.url}/collections/c`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ pad: 'x'.repeat(2000) }),
        });
        expect(response.status).toBe(413);
        expect(small.takeViolations().map((v) => v.status)).toEqual([413]);
      } finally {
        await small.close();
      }
    });
  });

  describe('writes and wait', () => {
    it(
      'records the wait flag of every write; a write without wait=true is acknowledged and applied ' + 'later',
      async () => {
        await collectionWithPoints('c', []);
        const late = await call('PUT', '/collections/c/points', { points: [point('a', 1)] });
        expect(late.json.result).toMatchObject({ status: 'acknowledged' });
        expect((await call('POST', '/collections/c/points/count', {})).json.result).toEqual({ count: 0 });
        await new Promise((resolve) => setTimeout(resolve, 120));
        expect((await call('POST', '/collections/c/points/count', {})).json.result).toEqual({ count: 1 });
        const now = await call('PUT', '/collections/c/points?wait=true', { points: [point('b', 2)] });
        expect(now.json.result).toMatchObject({ status: 'completed' });
        expect((await call('POST', '/collections/c/points/count', {})).json.result).toEqual({ count: 2 });
        expect(double.writes().map((w) => w.wait)).toEqual(['true', undefined, 'true']);
        expect(double.unwaitedWrites()).toHaveLength(1);
      },
    );

    it('a waited write applies earlier pending writes first, in order', async () => {
      const id = randomUUID();
      await collectionWithPoints('c', []);
      await call('PUT', '/collections/c/points', { points: [point('first', 1, id)] });
      await call('POST', '/collections/c/points/payload?wait=true', { payload: { seen: true }, points: [id] });
      expect((await call('POST', '/collections/c/points', { ids: [id] })).json.result).toEqual([
        { id, payload: { item_id: 'first', seen: true } },
      ]);
    });
  });

  describe('collections and aliases', () => {
    it('refuses an alias named like a collection and a collection named like an alias (400)', async () => {
      await collectionWithPoints('c', []);
      await collectionWithPoints('d', []);
      expect(
        (
          await call('POST', '/collections/aliases', {
            actions: [{ create_alias: { alias_name: 'live', collection_name: 'c' } }],
          })
        ).status,
      ).toBe(200);
      const aliasOnCollection = await call('POST', '/collections/aliases', {
        actions: [{ create_alias: { alias_name: 'd', collection_name: 'c' } }],
      });
      expect(aliasOnCollection).toMatchObject({
        status: 400,
        json: { status: { error: 'Wrong input: Collection `d` already exists!' } },
      });
      const collectionOnAlias = await call('PUT', '/collections/live', { vectors: { size: 4, distance: 'Cosine' } });
      expect(collectionOnAlias.status).toBe(400);
      expect(String((collectionOnAlias.json.status as { error: string }).error)).toMatch(
        /Alias with the same name already exists/,
      );
      expect((await call('PUT', '/collections/c', { vectors: { size: 4, distance: 'Cosine' } })).status).toBe(400);
    });

    it('applies alias actions in order like Qdrant 1.18: actions before a failing one stay applied', async () => {
      await collectionWithPoints('c', []);
      const response = await call('POST', '/collections/aliases', {
        actions: [
          { create_alias: { alias_name: 'kept', collection_name: 'c' } },
          { create_alias: { alias_name: 'lost', collection_name: 'missing' } },
        ],
      });
      expect(response.status).toBe(404);
      expect((await call('GET', '/aliases')).json.result).toEqual({
        aliases: [{ alias_name: 'kept', collection_name: 'c' }],
      });
      // Deleting an alias that does not exist is not an error; renaming one is.
      expect(
        (await call('POST', '/collections/aliases', { actions: [{ delete_alias: { alias_name: 'nothing' } }] })).status,
      ).toBe(200);
      expect(
        (
          await call('POST', '/collections/aliases', {
            actions: [{ rename_alias: { old_alias_name: 'nothing', new_alias_name: 'x' } }],
          })
        ).status,
      ).toBe(404);
    });

    it('resolves aliases for point operations, collection info and exists, but not for create or delete', async () => {
      await collectionWithPoints('c', [point('a', 1)]);
      await call('POST', '/collections/aliases', {
        actions: [{ create_alias: { alias_name: 'live', collection_name: 'c' } }],
      });
      expect((await call('POST', '/collections/live/points/count', {})).json.result).toEqual({ count: 1 });
      expect((await call('GET', '/collections/live/exists')).json.result).toEqual({ exists: true });
      expect((await call('DELETE', '/collections/live')).json.result).toBe(false);
      expect((await call('GET', '/collections/c')).status).toBe(200);
    });

    it('scores grouped queries by exact cosine similarity, one group per payload value, best group first', async () => {
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      await collectionWithPoints('c', [
        { id: ids[0], vector: [1, 0, 0, 0], payload: { item_id: 'x' } },
        { id: ids[1], vector: [3, 4, 0, 0], payload: { item_id: 'x' } },
        { id: ids[2], vector: [0, 0, 0, 2], payload: { item_id: 'y' } },
      ]);
      const { json } = await call('POST', '/collections/c/points/query/groups', {
        query: [0, 1, 0, 0],
        group_by: 'item_id',
        group_size: 1,
        limit: 5,
        with_payload: true,
      });
      const groups = (json.result as { groups: Array<{ id: string; hits: Array<{ id: string; score: number }> }> })
        .groups;
      expect(groups.map((g) => [g.id, g.hits.map((h) => h.id)])).toEqual([
        ['x', [ids[1]]],
        ['y', [ids[2]]],
      ]);
      expect(groups[0].hits[0].score).toBeCloseTo(0.8, 6);
      expect(groups[1].hits[0].score).toBeCloseTo(0, 6);
    });
  });

  describe('snapshots', () => {
    it('creates a collection snapshot as a real file with its sha256, lists, downloads and deletes it', async () => {
      await collectionWithPoints('c', [point('a', 1), point('b', 2)]);
      const created = await call('POST', '/collections/c/snapshots?wait=true');
      const snapshot = created.json.result as { name: string; size: number; checksum: string; creation_time: string };
      expect(snapshot.name).toMatch(/^c-\d+-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.snapshot$/);
      const file = path.join(double.snapshotDir, 'collections', 'c', snapshot.name);
      expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(snapshot.checksum);
      expect((await call('GET', '/collections/c/snapshots')).json.result).toEqual([snapshot]);
      const download = await fetch(`${double.url}/collections/c/snapshots/${snapshot.name}`);
      const bytes = Buffer.from(await download.arrayBuffer());
      expect(bytes.length).toBe(snapshot.size);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(snapshot.checksum);
      const second = (await call('POST', '/collections/c/snapshots?wait=true')).json.result as { name: string };
      expect(second.name).not.toBe(snapshot.name);
      expect((await call('DELETE', `/collections/c/snapshots/${snapshot.name}?wait=true`)).json.result).toBe(true);
      expect(
        ((await call('GET', '/collections/c/snapshots')).json.result as Array<{ name: string }>).map((s) => s.name),
      ).toEqual([second.name]);
      expect((await call('GET', `/collections/c/snapshots/${snapshot.name}`)).status).toBe(404);
    });

    it(
      'recovers a collection from an uploaded snapshot (priority=snapshot), restoring its points and ' + 'config',
      async () => {
        const points = [point('a', 1), point('b', 2), point('c', 3)];
        await collectionWithPoints('c', points);
        const { name, checksum } = (await call('POST', '/collections/c/snapshots?wait=true')).json.result as {
          name: string;
          checksum: string;
        };
        const bytes = Buffer.from(await (await fetch(`${double.url}/collections/c/snapshots/${name}`)).arrayBuffer());
        await call('POST', '/collections/c/points/delete?wait=true', { filter: {} });
        const form = new FormData();
        form.append('snapshot', new Blob([bytes]), name);
        const upload = await fetch(
          `${double.url}/collections/c/snapshots/upload?priority=snapshot&wait=true&checksum=${checksum}`,
          { method: 'POST', body: form },
        );
        expect(upload.status).toBe(200);
        expect(((await upload.json()) as { result: unknown }).result).toBe(true);
        expect((await call('POST', '/collections/c/points/count', {})).json.result).toEqual({ count: 3 });
        // The client's generated recoverFromUploadedSnapshot cannot upload: it sends the payload as JSON,
        // which Qdrant refuses. Operations code must post multipart/form-data itself.
        const client = new QdrantClient({ url: double.url, checkCompatibility: false });
        const viaClient = await client
          .api()
          .recoverFromUploadedSnapshot({
            collection_name: 'restored',
            priority: 'snapshot',
            wait: true,
            snapshot: new Blob([bytes]),
          } as never)
          .catch((e: { status?: number }) => e.status);
        expect(viaClient).toBe(400);
        expect(double.takeViolations().map((v) => v.message)).toEqual([expect.stringMatching(/multipart\/form-data/)]);
        const into = new FormData();
        into.append('snapshot', new Blob([bytes]), name);
        expect(
          (
            await fetch(`${double.url}/collections/restored/snapshots/upload?priority=snapshot&wait=true`, {
              method: 'POST',
              body: into,
            })
          ).status,
        ).toBe(200);
        expect(await client.count('restored', { exact: true })).toEqual({ count: 3 });
        expect((await client.getCollection('restored')).config.params.vectors).toEqual({ size: 4, distance: 'Cosine' });
        const bad = new FormData();
        bad.append('snapshot', new Blob([bytes]), name);
        const mismatch = await fetch(
          `${double.url}/collections/c/snapshots/upload?priority=snapshot&checksum=${'0'.repeat(64)}`,
          { method: 'POST', body: bad },
        );
        expect(mismatch.status).toBe(400);
      },
    );

    it('recovers from a location: a file:// path inside the snapshot directory or an http URL', async () => {
      await collectionWithPoints('c', [point('a', 1), point('b', 2)]);
      const { name } = (await call('POST', '/collections/c/snapshots?wait=true')).json.result as { name: string };
      const file = pathToFileURL(path.join(double.snapshotDir, 'collections', 'c', name)).href;
      expect(
        (
          await call('PUT', '/collections/from_file/snapshots/recover?wait=true', {
            location: file,
            priority: 'snapshot',
          })
        ).json.result,
      ).toBe(true);
      expect((await call('POST', '/collections/from_file/points/count', {})).json.result).toEqual({ count: 2 });
      const http = `${double.url}/collections/c/snapshots/${name}`;
      expect((await call('PUT', '/collections/from_http/snapshots/recover', { location: http })).json.result).toBe(
        true,
      );
      expect((await call('POST', '/collections/from_http/points/count', {})).json.result).toEqual({ count: 2 });
      const outside = await call('PUT', '/collections/x/snapshots/recover', {
        location: pathToFileURL('/etc/passwd').href,
      });
      expect(outside.status).toBe(403);
    });

    it('makes full snapshots (collections and aliases); restoring one brings both back', async () => {
      await collectionWithPoints('c', [point('a', 1)]);
      await call('POST', '/collections/aliases', {
        actions: [{ create_alias: { alias_name: 'items', collection_name: 'c' } }],
      });
      const full = (await call('POST', '/snapshots?wait=true')).json.result as { name: string; checksum: string };
      expect(full.name).toMatch(/^full-snapshot-.*\.snapshot$/);
      expect((await call('GET', '/snapshots')).json.result).toEqual([
        expect.objectContaining({ name: full.name, checksum: full.checksum }),
      ]);
      const bytes = Buffer.from(await (await fetch(`${double.url}/snapshots/${full.name}`)).arrayBuffer());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(full.checksum);
      await call('DELETE', '/collections/c');
      double.restoreFullSnapshot(full.name);
      expect((await call('GET', '/aliases')).json.result).toEqual({
        aliases: [{ alias_name: 'items', collection_name: 'c' }],
      });
      expect((await call('POST', '/collections/items/points/count', {})).json.result).toEqual({ count: 1 });
      expect((await call('DELETE', `/snapshots/${full.name}?wait=true`)).json.result).toBe(true);
      expect((await call('GET', '/snapshots')).json.result).toEqual([]);
    });

    it('answers 202 and works afterwards when a snapshot is created with wait=false', async () => {
      await collectionWithPoints('c', []);
      const accepted = await call('POST', '/collections/c/snapshots?wait=false');
      expect(accepted.status).toBe(202);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await call('GET', '/collections/c/snapshots')).json.result).toHaveLength(1);
      expect(double.unwaitedWrites().map((w) => w.operationId)).toEqual(['create_snapshot']);
    });
  });

  describe('API key and outages', () => {
    it('needs the API key on every request except health probes', async () => {
      const locked = await QdrantDouble.start({ apiKey: 'k' });
      try {
        expect((await fetch(`${locked.url}/collections`)).status).toBe(401);
        expect((await fetch(`${locked.url}/collections`, { headers: { 'api-key': 'nope' } })).status).toBe(401);
        expect((await fetch(`${locked.url}/collections`, { headers: { 'api-key': 'k' } })).status).toBe(200);
        expect((await fetch(`${locked.url}/collections`, { headers: { authorization: 'Bearer k' } })).status).toBe(200);
        expect((await fetch(`${locked.url}/healthz`)).status).toBe(200);
        locked.assertNoViolations();
      } finally {
        await locked.close();
      }
    });

    it(
      'simulates an outage: refused connections, a hanging server, 503s; and comes back on the same ' + 'port',
      async () => {
        await collectionWithPoints('c', []);
        await double.goDown('refuse');
        // A fresh TCP connection (fetch might first reuse a pooled socket the double just cut).
        const refused = await new Promise((resolve) =>
          connect(double.port, '127.0.0.1')
            .on('connect', () => resolve('connected'))
            .on('error', (e: Error & { code?: string }) => resolve(e.code)),
        );
        expect(refused).toBe('ECONNREFUSED');
        await double.up();
        expect((await call('GET', '/collections')).status).toBe(200);
        await double.goDown('hang');
        const hung = await fetch(`${double.url}/collections`, { signal: AbortSignal.timeout(200) }).catch(
          (e: Error) => e.name,
        );
        expect(hung).toBe('TimeoutError');
        await double.up();
        await double.goDown('error');
        expect((await call('GET', '/collections')).status).toBe(503);
        await double.up();
        expect((await call('POST', '/collections/c/points/count', {})).json.result).toEqual({ count: 0 });
      },
    );
  });
});
