// A strict in-process stand-in for Qdrant (no Qdrant binary can run on these machines): a real HTTP
// server on 127.0.0.1 that @qdrant/js-client-rest talks to, serving in memory exactly the endpoints the
// store adapter and the operations scripts use.
//
// Strict means: every request is checked against the pinned Qdrant OpenAPI spec when QDRANT_OPENAPI_SPEC
// names it (see qdrant-openapi.ts) and by hand otherwise; a request the real server would refuse gets Qdrant's
// 4xx and is recorded as a violation, and so is a valid request the double cannot serve. Tests call
// assertNoViolations() so that such a request fails them loudly. Every write records whether it carried
// wait=true; a write without it is applied later, as real Qdrant does, so a read right after it is stale.
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DoubleGap, DoubleState, QdrantError, type CollectionState } from './qdrant-double-state.js';
import { loadQdrantOpenApi, QDRANT_VERSION, type QdrantOpenApi } from './qdrant-openapi.js';

export interface QdrantDoubleOptions {
  /** When set, every request needs header `api-key` (or `Authorization: Bearer`) with this value. */
  apiKey?: string;
  /** The OpenAPI spec to validate against; null = hand checks only. Default: QDRANT_OPENAPI_SPEC, if set. */
  specPath?: string | null;
  /** How long a write without wait=true stays invisible (ms). */
  unwaitedDelayMs?: number;
  /** Largest request body accepted (Qdrant's default service.max_request_size_mb is 32). */
  maxRequestBytes?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  operationId: string | undefined;
  body: unknown;
  status: number;
  /** The api-key header as received (so a test can check the key was sent). */
  apiKey: string | undefined;
  /** For writes: the `wait` query parameter as sent (undefined when absent). */
  wait?: string;
  write: boolean;
}

export interface Violation {
  kind: 'refused' | 'unknown-route' | 'not-implemented' | 'bad-response';
  method: string;
  path: string;
  status: number;
  message: string;
}

export type DownMode = 'refuse' | 'hang' | 'error';

type Handler = (ctx: Context) => unknown;

interface Route {
  method: string;
  path: string;
  operationId: string;
  /** Writes take `wait`; their wait flag is recorded and, when absent, they apply later. */
  write?: boolean;
  /** Health probes answer without the API key. */
  public?: boolean;
  handler: Handler;
}

interface Context {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  raw: Buffer;
  contentType: string | undefined;
  wait: boolean;
}

/** A response that is not a JSON envelope (snapshot downloads, 202 accepted). */
class RawResponse {
  constructor(
    readonly status: number,
    readonly body: Buffer | string,
    readonly contentType: string,
  ) {}
}

const COLLECTION_NAME_FORBIDDEN = /[<>:"/\\|?*\0]/;

const specStatusPrinted = new Set<string>();

export class QdrantDouble {
  readonly state = new DoubleState();
  readonly requests: RecordedRequest[] = [];
  readonly violations: Violation[] = [];
  /** Semantic errors Qdrant would also give (404, dimension mismatch, 401...): not violations. */
  readonly errors: RecordedRequest[] = [];
  readonly snapshotDir: string;
  /** Why requests are not checked against the spec, or undefined when they are. */
  readonly specSkipped: string | undefined;
  private readonly spec: QdrantOpenApi | undefined;
  private readonly routes: Route[];
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly pending: Array<() => void> = [];
  private pendingTimer: NodeJS.Timeout | undefined;
  private down: DownMode | undefined;
  private lastSnapshotSecond = 0;
  /** Part of snapshot names, as in Qdrant (`<collection>-<peer id>-<time>.snapshot`). */
  private readonly peerId = 1234567890123456;
  port = 0;

  private constructor(
    private readonly server: Server,
    private readonly options: QdrantDoubleOptions,
  ) {
    this.snapshotDir = mkdtempSync(path.join(os.tmpdir(), 'qdrant-double-snapshots-'));
    if (options.specPath === null) {
      this.specSkipped = 'spec validation disabled for this double (specPath: null)';
    } else {
      const loaded = loadQdrantOpenApi(options.specPath ?? undefined);
      if ('spec' in loaded) this.spec = loaded.spec;
      else this.specSkipped = loaded.skipped;
    }
    if (this.specSkipped && !specStatusPrinted.has(this.specSkipped)) {
      specStatusPrinted.add(this.specSkipped);
      console.warn(`[qdrant-double] ${this.specSkipped}`);
    }
    this.routes = this.buildRoutes();
    if (this.spec) {
      // The double's own route table must name the operations the spec has at those routes.
      for (const route of this.routes) {
        const op = this.spec.find(route.method, route.path);
        if (op?.operationId !== route.operationId) {
          throw new Error(
            `qdrant-double route ${route.method} ${route.path} is ${route.operationId}, the spec says ` +
              `${op?.operationId ?? 'nothing'}`,
          );
        }
      }
    }
  }

  static async start(options: QdrantDoubleOptions = {}): Promise<QdrantDouble> {
    const server = createServer();
    const double = new QdrantDouble(server, options);
    server.on('request', (req, res) => void double.handle(req, res));
    server.on('connection', (socket) => {
      double.sockets.add(socket);
      socket.on('close', () => double.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    double.port = (server.address() as AddressInfo).port;
    return double;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Writes (requests that take `wait`) in the order received. */
  writes(): RecordedRequest[] {
    return this.requests.filter((r) => r.write);
  }

  /** Writes that did not carry wait=true. */
  unwaitedWrites(): RecordedRequest[] {
    return this.writes().filter((r) => r.wait !== 'true');
  }

  /** Returns and forgets the violations (for tests that provoke them on purpose). */
  takeViolations(): Violation[] {
    return this.violations.splice(0);
  }

  assertNoViolations(): void {
    if (this.violations.length === 0) return;
    const lines = this.violations.map((v) => `  ${v.kind} ${v.method} ${v.path} → ${v.status}: ${v.message}`);
    throw new Error(
      `The Qdrant double saw ${this.violations.length} request(s) the real Qdrant ${QDRANT_VERSION} would ` +
        `refuse or that it cannot serve:\n${lines.join('\n')}`,
    );
  }

  /** Sets a collection's reported status (e.g. 'yellow' while "indexing"). */
  setCollectionStatus(name: string, status: CollectionState['status']): void {
    this.state.resolve(name).status = status;
  }

  /** What starting Qdrant with `--storage-snapshot FILE` does: the whole storage comes from the file. */
  restoreFullSnapshot(name: string): void {
    this.applyPending();
    this.state.recoverFull(readFileSync(this.fullSnapshotPath(name)));
  }

  /**
   * Simulates the store being down: 'refuse' closes the port (ECONNREFUSED), 'hang' accepts requests
   * and never answers (client timeouts), 'error' answers 503. `up()` brings it back on the same port.
   */
  async goDown(mode: DownMode): Promise<void> {
    this.down = mode;
    if (mode === 'refuse') {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.dropConnections();
      });
    }
  }

  async up(): Promise<void> {
    const was = this.down;
    this.down = undefined;
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    if (was === 'refuse') {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.port, '127.0.0.1', () => resolve());
      });
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.pendingTimer);
    for (const res of this.hanging) res.destroy();
    if (this.server.listening) {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.dropConnections();
      });
    }
    rmSync(this.snapshotDir, { recursive: true, force: true });
  }

  private dropConnections(): void {
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
  }

  // ---- request handling ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down === 'hang') {
      this.hanging.add(res);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://double');
    const method = (req.method ?? 'GET').toUpperCase();
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      operationId: undefined,
      body: undefined,
      status: 0,
      apiKey: headerValue(req.headers['api-key']),
      write: false,
    };
    this.requests.push(record);
    const send = (status: number, body: unknown, contentType = 'application/json') => {
      record.status = status;
      const payload = body instanceof Buffer || typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    };
    const fail = (status: number, error: string, violation?: Violation['kind']) => {
      if (violation) {
        this.violations.push({ kind: violation, method, path: url.pathname, status, message: error });
        console.error(`[qdrant-double] ${violation}: ${method} ${url.pathname}${url.search} → ${status}: ${error}`);
      } else {
        this.errors.push(record);
      }
      send(status, { status: { error }, time: 0 });
    };

    if (this.down === 'error') return fail(503, 'Service Unavailable: the Qdrant double is simulating an outage');

    let raw: Buffer;
    try {
      raw = await readBody(req, this.options.maxRequestBytes ?? 32 * 1024 * 1024);
    } catch (error) {
      return fail(413, (error as Error).message, 'refused');
    }

    const matched = this.match(method, url.pathname);
    if (!matched) {
      const inSpec = this.spec?.operations.find(
        (op) => op.method === method && templateMatch(op.pathTemplate, url.pathname),
      );
      if (inSpec)
        return fail(
          501,
          `${inSpec.operationId} (${method} ${inSpec.pathTemplate}) is a valid Qdrant operation the double ` +
            `does not implement`,
          'not-implemented',
        );
      const otherMethod = this.routes.some((r) => templateMatch(r.path, url.pathname));
      return fail(otherMethod ? 405 : 404, `No route for ${method} ${url.pathname}`, 'unknown-route');
    }
    const { route, params } = matched;
    record.operationId = route.operationId;
    record.write = route.write === true;
    if (route.write) record.wait = url.searchParams.get('wait') ?? undefined;

    if (this.options.apiKey !== undefined && !route.public) {
      const bearer = headerValue(req.headers.authorization)?.replace(/^Bearer /, '');
      const key = record.apiKey ?? bearer;
      if (key === undefined) return fail(401, 'Must provide an API key or an Authorization bearer token');
      if (key !== this.options.apiKey) return fail(401, 'Invalid API key or JWT');
    }

    const contentType = headerValue(req.headers['content-type']);
    const op = this.spec?.find(route.method, route.path);
    const bodyKind = op?.bodyKind ?? (contentType?.startsWith('multipart/') ? 'multipart' : 'json');
    let body: unknown = {};
    const text = raw.toString('utf8');
    if (bodyKind !== 'multipart' && raw.length > 0) {
      try {
        body = JSON.parse(text);
      } catch (error) {
        return fail(400, `Format error in JSON body: ${(error as Error).message}`, 'refused');
      }
      record.body = body;
    }
    if (op && op.bodyKind === 'none' && raw.length > 0 && text.trim() !== '{}') {
      return fail(400, `${op.operationId} takes no body, but one was sent: ${text.slice(0, 200)}`, 'refused');
    }
    for (const [name, value] of Object.entries(params)) {
      if (
        name === 'collection_name' &&
        (value.length === 0 || value.length > 255 || COLLECTION_NAME_FORBIDDEN.test(value))
      ) {
        return fail(
          422,
          `Validation error in path parameters: [name: collection name ${JSON.stringify(value)} is empty, too ` +
            `long or contains one of <>:"/\\|?*]`,
          'refused',
        );
      }
    }
    if (op) {
      const refusal = op.checkRequest({
        pathParams: params,
        query: url.searchParams,
        contentType,
        body,
        hasBody: raw.length > 0,
      });
      if (refusal) return fail(refusal.status, refusal.error, 'refused');
    }
    if (
      bodyKind === 'json' &&
      op?.bodyKind === 'json' &&
      (typeof body !== 'object' || body === null || Array.isArray(body))
    ) {
      return fail(400, 'Format error in JSON body: expected a JSON object', 'refused');
    }

    const ctx: Context = {
      params,
      query: url.searchParams,
      body: body as Record<string, unknown>,
      raw,
      contentType,
      wait: url.searchParams.get('wait') === 'true',
    };
    try {
      const result = await route.handler(ctx);
      if (result instanceof RawResponse) return send(result.status, result.body, result.contentType);
      const envelope = { result, status: 'ok', time: 0.0001 };
      const problem = op?.checkResponse(200, envelope);
      if (problem) {
        this.violations.push({
          kind: 'bad-response',
          method,
          path: url.pathname,
          status: 200,
          message: `the double's own response breaks the spec: ${problem}`,
        });
      }
      send(200, envelope);
    } catch (error) {
      if (error instanceof QdrantError) return fail(error.status, error.message, error.format ? 'refused' : undefined);
      if (error instanceof DoubleGap) return fail(501, error.message, 'not-implemented');
      console.error('[qdrant-double] handler crashed', error);
      return fail(500, `Service internal error: ${(error as Error).message}`, 'bad-response');
    }
  }

  private match(method: string, pathname: string): { route: Route; params: Record<string, string> } | undefined {
    let best: { route: Route; params: Record<string, string>; literals: number } | undefined;
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const params = templateMatch(route.path, pathname);
      if (!params) continue;
      const literals = route.path.split('/').filter((s) => !s.startsWith('{')).length;
      if (!best || literals > best.literals) best = { route, params, literals };
    }
    return best;
  }

  // ---- writes without wait ----

  /** Runs a write now (wait=true, after any earlier pending ones) or later, as Qdrant does. */
  private write(ctx: Context, apply: () => void) {
    const operation_id = this.requests.length;
    if (ctx.wait) {
      this.applyPending();
      apply();
      return { operation_id, status: 'completed' };
    }
    this.pending.push(apply);
    this.pendingTimer ??= setTimeout(() => this.applyPending(), this.options.unwaitedDelayMs ?? 50);
    return { operation_id, status: 'acknowledged' };
  }

  private applyPending(): void {
    clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    for (const apply of this.pending.splice(0)) {
      try {
        apply();
      } catch (error) {
        // Qdrant reports nothing to the client for a failed write it had already acknowledged.
        console.error(`[qdrant-double] a write without wait=true failed later: ${(error as Error).message}`);
      }
    }
  }

  // ---- snapshots on disk ----

  /** Qdrant names snapshots by the second; the double keeps names unique by never reusing a second. */
  private snapshotTime(): { stamp: string; iso: string } {
    const second = Math.max(Math.floor(Date.now() / 1000), this.lastSnapshotSecond + 1);
    this.lastSnapshotSecond = second;
    const iso = new Date(second * 1000).toISOString().slice(0, 19);
    return { stamp: iso.replace('T', '-').replace(/:/g, '-'), iso };
  }

  private collectionSnapshotDir(collection: string): string {
    const dir = path.join(this.snapshotDir, 'collections', collection);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private fullSnapshotPath(name: string): string {
    const file = path.join(this.snapshotDir, 'full', path.basename(name));
    if (path.basename(name) !== name || !statSafe(file))
      throw new QdrantError(404, `Not found: Snapshot ${name} not found`);
    return file;
  }

  private writeSnapshot(dir: string, name: string, bytes: Buffer) {
    mkdirSync(dir, { recursive: true });
    const checksum = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(path.join(dir, name), bytes);
    writeFileSync(path.join(dir, `${name}.checksum`), checksum);
    return this.describeSnapshot(dir, name);
  }

  private describeSnapshot(dir: string, name: string) {
    const file = path.join(dir, name);
    const stat = statSync(file);
    const checksumFile = path.join(dir, `${name}.checksum`);
    const checksum = statSafe(checksumFile)
      ? readFileSync(checksumFile, 'utf8')
      : createHash('sha256').update(readFileSync(file)).digest('hex');
    return { name, creation_time: new Date(stat.mtimeMs).toISOString().slice(0, 19), size: stat.size, checksum };
  }

  private listSnapshots(dir: string) {
    if (!statSafe(dir)) return [];
    return readdirSync(dir)
      .filter((name) => name.endsWith('.snapshot'))
      .map((name) => this.describeSnapshot(dir, name));
  }

  private snapshotFile(collection: string, name: string): string {
    const file = path.join(this.collectionSnapshotDir(collection), path.basename(name));
    if (path.basename(name) !== name || !statSafe(file))
      throw new QdrantError(404, `Not found: Snapshot ${name} not found`);
    return file;
  }

  private async fetchSnapshot(location: string, apiKey: unknown): Promise<Buffer> {
    const url = new URL(location);
    if (url.protocol === 'file:') {
      const file = path.resolve(fileURLToPath(url));
      if (!file.startsWith(this.snapshotDir + path.sep)) {
        throw new QdrantError(403, `Forbidden: Snapshot file ${file} must be inside the snapshots directory`);
      }
      if (!statSafe(file)) throw new QdrantError(404, `Not found: Snapshot file ${file} does not exist`);
      return readFileSync(file);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new QdrantError(400, `Bad request: unsupported snapshot location ${location}`);
    // Tests may only talk to loopback; the real server would download from anywhere.
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname))
      throw new DoubleGap(`the double downloads snapshots only from loopback, not ${url.hostname}`);
    const response = await fetch(url, { headers: typeof apiKey === 'string' ? { 'api-key': apiKey } : {} });
    if (!response.ok)
      throw new QdrantError(400, `Bad request: failed to download snapshot from ${location}: ${response.status}`);
    return Buffer.from(await response.arrayBuffer());
  }

  private recover(collection: string, bytes: Buffer, checksum: unknown): boolean {
    if (typeof checksum === 'string') {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== checksum.toLowerCase())
        throw new QdrantError(400, `Checksum mismatch: expected ${checksum}, actual ${actual}`);
    }
    this.applyPending();
    this.state.recoverCollection(collection, bytes);
    return true;
  }

  /** A snapshot operation with wait=false answers 202 and runs afterwards, like Qdrant. */
  private async snapshotOperation<T>(ctx: Context, run: () => T | Promise<T>): Promise<T | RawResponse> {
    if (ctx.query.get('wait') === 'false') {
      setImmediate(() => {
        Promise.resolve()
          .then(run)
          .catch((error: Error) =>
            console.error(`[qdrant-double] snapshot operation without wait failed: ${error.message}`),
          );
      });
      return new RawResponse(202, JSON.stringify({ status: 'accepted', time: 0 }), 'application/json');
    }
    return run();
  }

  // ---- routes ----

  private buildRoutes(): Route[] {
    const s = this.state;
    const collection = (ctx: Context) => s.resolve(ctx.params.collection_name);
    return [
      {
        method: 'GET',
        path: '/',
        operationId: 'root',
        // Qdrant answers / with the bare version object, not the usual {result, status, time} envelope.
        handler: () =>
          new RawResponse(
            200,
            JSON.stringify({
              title: 'qdrant - vector search engine',
              version: QDRANT_VERSION,
              commit: 'qdrant-double',
            }),
            'application/json',
          ),
      },
      {
        method: 'GET',
        path: '/healthz',
        operationId: 'healthz',
        public: true,
        handler: () => new RawResponse(200, 'healthz check passed', 'text/plain'),
      },
      {
        method: 'GET',
        path: '/livez',
        operationId: 'livez',
        public: true,
        handler: () => new RawResponse(200, 'livez check passed', 'text/plain'),
      },
      {
        method: 'GET',
        path: '/readyz',
        operationId: 'readyz',
        public: true,
        handler: () => new RawResponse(200, 'all shards are ready', 'text/plain'),
      },
      {
        method: 'GET',
        path: '/collections',
        operationId: 'get_collections',
        handler: () => ({ collections: [...s.collections.keys()].map((name) => ({ name })) }),
      },
      {
        method: 'GET',
        path: '/collections/{collection_name}',
        operationId: 'get_collection',
        handler: (ctx) => s.info(collection(ctx)),
      },
      {
        method: 'PUT',
        path: '/collections/{collection_name}',
        operationId: 'create_collection',
        handler: (ctx) => {
          this.applyPending();
          s.createCollection(ctx.params.collection_name, ctx.body);
          return true;
        },
      },
      {
        method: 'DELETE',
        path: '/collections/{collection_name}',
        operationId: 'delete_collection',
        handler: (ctx) => {
          this.applyPending();
          return s.deleteCollection(ctx.params.collection_name);
        },
      },
      {
        method: 'GET',
        path: '/collections/{collection_name}/exists',
        operationId: 'collection_exists',
        // Qdrant answers through get_collection, which resolves aliases.
        handler: (ctx) => ({
          exists: s.collections.has(s.aliases.get(ctx.params.collection_name) ?? ctx.params.collection_name),
        }),
      },
      {
        method: 'POST',
        path: '/collections/aliases',
        operationId: 'update_aliases',
        handler: (ctx) => {
          this.applyPending();
          s.updateAliases(ctx.body.actions);
          return true;
        },
      },
      {
        method: 'GET',
        path: '/aliases',
        operationId: 'get_collections_aliases',
        handler: () => ({ aliases: s.aliasesOf() }),
      },
      {
        method: 'GET',
        path: '/collections/{collection_name}/aliases',
        operationId: 'get_collection_aliases',
        handler: (ctx) => ({ aliases: s.aliasesOf(collection(ctx).name) }),
      },
      {
        method: 'PUT',
        path: '/collections/{collection_name}/index',
        operationId: 'create_field_index',
        write: true,
        handler: (ctx) => {
          const c = collection(ctx);
          return this.write(ctx, () => s.createPayloadIndex(c, ctx.body));
        },
      },
      {
        method: 'PUT',
        path: '/collections/{collection_name}/points',
        operationId: 'upsert_points',
        write: true,
        handler: (ctx) => {
          const c = collection(ctx);
          const points = s.preparePoints(c, ctx.body); // a bad request is refused now, even without wait
          return this.write(ctx, () => s.upsert(c, points));
        },
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points',
        operationId: 'get_points',
        handler: (ctx) => s.retrieve(collection(ctx), ctx.body),
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points/delete',
        operationId: 'delete_points',
        write: true,
        handler: (ctx) => {
          const c = collection(ctx);
          return this.write(ctx, () => s.deletePoints(c, ctx.body));
        },
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points/payload',
        operationId: 'set_payload',
        write: true,
        handler: (ctx) => {
          const c = collection(ctx);
          return this.write(ctx, () => s.setPayload(c, ctx.body, false));
        },
      },
      {
        method: 'PUT',
        path: '/collections/{collection_name}/points/payload',
        operationId: 'overwrite_payload',
        write: true,
        handler: (ctx) => {
          const c = collection(ctx);
          return this.write(ctx, () => s.setPayload(c, ctx.body, true));
        },
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points/scroll',
        operationId: 'scroll_points',
        handler: (ctx) => s.scroll(collection(ctx), ctx.body),
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points/count',
        operationId: 'count_points',
        handler: (ctx) => ({ count: s.count(collection(ctx), ctx.body) }),
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points/query',
        operationId: 'query_points',
        handler: (ctx) => {
          const vector = queryVector(ctx.body.query);
          if (vector === undefined || vector === null)
            throw new DoubleGap('query without a query vector is not implemented by the double');
          return s.query(collection(ctx), ctx.body, vector);
        },
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points/query/groups',
        operationId: 'query_points_groups',
        handler: (ctx) => {
          const vector = queryVector(ctx.body.query);
          if (vector === undefined || vector === null)
            throw new DoubleGap('query/groups without a query vector is not implemented by the double');
          return s.groups(collection(ctx), ctx.body, vector);
        },
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/points/search/groups',
        operationId: 'search_point_groups',
        handler: (ctx) => s.groups(collection(ctx), ctx.body, ctx.body.vector),
      },
      {
        method: 'GET',
        path: '/collections/{collection_name}/snapshots',
        operationId: 'list_snapshots',
        handler: (ctx) => this.listSnapshots(this.collectionSnapshotDir(collection(ctx).name)),
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/snapshots',
        operationId: 'create_snapshot',
        write: true,
        handler: (ctx) => {
          this.applyPending();
          const c = collection(ctx);
          const bytes = s.collectionSnapshot(c);
          const name = `${c.name}-${this.peerId}-${this.snapshotTime().stamp}.snapshot`;
          return this.snapshotOperation(ctx, () => this.writeSnapshot(this.collectionSnapshotDir(c.name), name, bytes));
        },
      },
      {
        method: 'GET',
        path: '/collections/{collection_name}/snapshots/{snapshot_name}',
        operationId: 'get_snapshot',
        handler: (ctx) =>
          new RawResponse(
            200,
            readFileSync(this.snapshotFile(collection(ctx).name, ctx.params.snapshot_name)),
            'application/octet-stream',
          ),
      },
      {
        method: 'DELETE',
        path: '/collections/{collection_name}/snapshots/{snapshot_name}',
        operationId: 'delete_snapshot',
        write: true,
        handler: (ctx) => {
          const file = this.snapshotFile(collection(ctx).name, ctx.params.snapshot_name);
          return this.snapshotOperation(ctx, () => {
            rmSync(file, { force: true });
            rmSync(`${file}.checksum`, { force: true });
            return true;
          });
        },
      },
      {
        method: 'POST',
        path: '/collections/{collection_name}/snapshots/upload',
        operationId: 'recover_from_uploaded_snapshot',
        write: true,
        handler: async (ctx) => {
          const form = await parseMultipart(ctx);
          const file = form.get('snapshot');
          if (!(file instanceof Blob))
            throw new QdrantError(400, 'Multipart form error: field `snapshot` (a file) is missing', true);
          const bytes = Buffer.from(await file.arrayBuffer());
          const name = ctx.params.collection_name;
          const uploadedName = path.basename((file as File).name || '') || `${randomUUID()}.snapshot`;
          writeFileSync(path.join(this.collectionSnapshotDir(name), uploadedName), bytes);
          return this.snapshotOperation(ctx, () => this.recover(name, bytes, ctx.query.get('checksum') ?? undefined));
        },
      },
      {
        method: 'PUT',
        path: '/collections/{collection_name}/snapshots/recover',
        operationId: 'recover_from_snapshot',
        write: true,
        handler: async (ctx) => {
          const location = ctx.body.location;
          if (typeof location !== 'string')
            throw new QdrantError(400, 'Format error in JSON body: missing field `location`', true);
          const bytes = await this.fetchSnapshot(location, ctx.body.api_key);
          return this.snapshotOperation(ctx, () => this.recover(ctx.params.collection_name, bytes, ctx.body.checksum));
        },
      },
      {
        method: 'GET',
        path: '/snapshots',
        operationId: 'list_full_snapshots',
        handler: () => this.listSnapshots(path.join(this.snapshotDir, 'full')),
      },
      {
        method: 'POST',
        path: '/snapshots',
        operationId: 'create_full_snapshot',
        write: true,
        handler: (ctx) => {
          this.applyPending();
          const bytes = s.fullSnapshot();
          const name = `full-snapshot-${this.snapshotTime().stamp}.snapshot`;
          return this.snapshotOperation(ctx, () =>
            this.writeSnapshot(path.join(this.snapshotDir, 'full'), name, bytes),
          );
        },
      },
      {
        method: 'GET',
        path: '/snapshots/{snapshot_name}',
        operationId: 'get_full_snapshot',
        handler: (ctx) =>
          new RawResponse(
            200,
            readFileSync(this.fullSnapshotPath(ctx.params.snapshot_name)),
            'application/octet-stream',
          ),
      },
      {
        method: 'DELETE',
        path: '/snapshots/{snapshot_name}',
        operationId: 'delete_full_snapshot',
        write: true,
        handler: (ctx) => {
          const file = this.fullSnapshotPath(ctx.params.snapshot_name);
          return this.snapshotOperation(ctx, () => {
            rmSync(file, { force: true });
            rmSync(`${file}.checksum`, { force: true });
            return true;
          });
        },
      },
    ];
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function templateMatch(template: string, pathname: string): Record<string, string> | undefined {
  const want = template.split('/');
  const got = pathname.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const segment = want[i];
    if (segment.startsWith('{') && segment.endsWith('}')) {
      if (got[i] === '') return undefined;
      try {
        params[segment.slice(1, -1)] = decodeURIComponent(got[i]);
      } catch {
        return undefined;
      }
    } else if (segment !== got[i]) {
      return undefined;
    }
  }
  return params;
}

function statSafe(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit)
      throw new Error(`Payload too large: the request body is larger than allowed (limit: ${limit} bytes)`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses multipart/form-data with the platform's own parser (undici's Request.formData). */
async function parseMultipart(ctx: Context): Promise<FormData> {
  if (!ctx.contentType?.startsWith('multipart/form-data'))
    throw new QdrantError(400, 'Content type error: expected multipart/form-data', true);
  try {
    return await new Request('http://double/', {
      method: 'POST',
      headers: { 'content-type': ctx.contentType },
      body: ctx.raw,
    }).formData();
  } catch (error) {
    throw new QdrantError(400, `Multipart form error: ${(error as Error).message}`, true);
  }
}

/** The dense vector of a Query API `query`: a plain vector or `{ nearest: vector }`. */
function queryVector(query: unknown): unknown {
  return query && typeof query === 'object' && !Array.isArray(query) && 'nearest' in query
    ? (query as { nearest: unknown }).nearest
    : query;
}
