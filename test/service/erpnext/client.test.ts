// The ERPNext client against the strict Frappe double over real loopback HTTP: paging, filters, incremental runs,
// renames and deletions, files and the token's reach, retries, errors, timeouts and aborts. The double's request
// log is the evidence: what was asked, how often, with or without the token.
import http from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ErpNextClient,
  itemImageRefs,
  type ErpNextClientOptions,
  type ErpNextFile,
  type ErpNextItem,
} from '../../../service/src/erpnext/client.js';
import { ErpNextError } from '../../../service/src/erpnext/errors.js';
import { FrappeDouble, type ApiUser } from '../../support/frappe-double.js';
import { connects } from '../../support/loopback-only.js';

let double: FrappeDouble;
let reader: ApiUser;
let logs: { level: string; message: string }[];

beforeEach(async () => {
  double = await FrappeDouble.start();
  reader = double.addApiUser('sync@example.com', ['Item', 'File']);
  logs = [];
});

afterEach(async () => {
  await double.close();
  double.assertNoViolations();
  // Whatever a test did, no log line carried a credential.
  const logged = logs.map((entry) => entry.message).join('\n');
  expect(logged).not.toContain(reader.secret);
  expect(logged).not.toContain(reader.key);
});

function client(user: ApiUser = reader, options: Partial<ErpNextClientOptions> = {}): ErpNextClient {
  return new ErpNextClient({
    url: double.url,
    apiKey: user.key,
    apiSecret: user.secret,
    logger: {
      info: (message) => logs.push({ level: 'info', message }),
      warn: (message) => logs.push({ level: 'warn', message }),
      debug: (message) => logs.push({ level: 'debug', message }),
    },
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 10 },
    timeoutMs: 3000,
    ...options,
  });
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

async function failure(promise: Promise<unknown>): Promise<ErpNextError> {
  const error: unknown = await promise.then(
    () => new Error('expected an ErpNextError, but the call succeeded'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ErpNextError);
  return error as ErpNextError;
}

const itemLists = () => double.requestsTo('/api/resource/Item');
const names = (items: { name: string }[]) => items.map((item) => item.name);

describe('paging', () => {
  it('reads 250 items in explicit pages, each row once', async () => {
    const created = double.addItems(250);
    const items = await collect(client().listItems({ pageSize: 20 }));
    expect(names(items).sort()).toEqual(created);
    expect(new Set(names(items)).size).toBe(250);
    const pages = itemLists();
    expect(pages).toHaveLength(13); // 12 full pages and a last one of 10
    for (const page of pages) {
      expect(page.query).toMatchObject({
        limit_page_length: '20',
        limit_start: '0',
        order_by: 'modified asc, name asc',
      });
      expect(JSON.parse(page.query.fields)).toEqual(
        expect.arrayContaining(['name', 'item_code', 'item_name', 'item_group', 'brand', 'disabled', 'image']),
      );
    }
  });

  it('asks one more page when the last one was exactly full, and stops at an empty one', async () => {
    double.addItems(40);
    expect(await collect(client().listItems({ pageSize: 20 }))).toHaveLength(40);
    expect(itemLists().map((request) => request.status)).toEqual([200, 200, 200]);
  });

  it("uses a large page by default rather than Frappe's 20", async () => {
    double.addItems(30);
    expect(await collect(client().listItems())).toHaveLength(30);
    expect(itemLists().map((request) => request.query.limit_page_length)).toEqual(['500']);
  });

  it('misses no item and repeats only changed ones when the catalog changes between pages', async () => {
    double.addItems(50);
    let pages = 0;
    double.beforeRequest(() => {
      if (++pages !== 2) return;
      // Second page: an item already read changes, one not yet read changes, one not yet read goes.
      double.updateItem('ITEM-0003', { item_name: 'changed early' });
      double.updateItem('ITEM-0030', { item_name: 'changed late' });
      double.deleteItem('ITEM-0040');
    });
    const items = await collect(client().listItems({ pageSize: 10 }));
    const expected = double.items().map((item) => item.name);
    expect(new Set(names(items))).toEqual(new Set(expected)); // all 49 survivors, none skipped
    expect(names(items).filter((name) => name === 'ITEM-0003')).toHaveLength(2); // before and after its change
    expect(items.filter((item) => item.name === 'ITEM-0003').at(-1)?.itemName).toBe('changed early');
    expect(items.length).toBe(50);
  });

  it('pages correctly through rows that share one `modified` timestamp', async () => {
    const created = double.addItems(30);
    for (const name of created) double.setModified('Item', name, '2024-01-01 00:00:00.000000');
    const items = await collect(client().listItems({ pageSize: 7 }));
    expect(names(items)).toEqual(created); // each once, in name order
  });

  it('lists every name by name order, also while items are deleted between pages', async () => {
    const created = double.addItems(45);
    let pages = 0;
    double.beforeRequest(() => {
      // Before the second page: an item of the first page goes. Offset paging would now skip ITEM-0011.
      if (++pages === 2) double.deleteItem('ITEM-0002');
    });
    expect(await client().listItemNames({ pageSize: 10 })).toEqual(created);
    expect(itemLists()).toHaveLength(5);
    expect(itemLists().every((request) => request.query.order_by === 'name asc')).toBe(true);
  });
});

describe('filters', () => {
  beforeEach(() => {
    double.addItems(5);
    double.updateItem('ITEM-0002', { item_group: 'Products' });
    double.updateItem('ITEM-0004', { item_group: 'Products', disabled: 1 });
  });

  it('passes ERPNEXT_ITEM_FILTERS through, in list or object form', async () => {
    expect(names(await collect(client().listItems({ filters: [['item_group', '=', 'Products']] })))).toEqual([
      'ITEM-0002',
      'ITEM-0004',
    ]);
    expect(await client().listItemNames({ filters: { item_group: 'Products', disabled: 0 } })).toEqual(['ITEM-0002']);
    expect(JSON.parse(itemLists()[0].query.filters)).toEqual([['item_group', '=', 'Products']]);
  });

  it('reports a filter Frappe refuses as invalid_query, naming ERPNEXT_ITEM_FILTERS, without retrying', async () => {
    const error = await failure(collect(client().listItems({ filters: [['colour', '=', 'red']] })));
    expect(error).toMatchObject({ kind: 'invalid_query', details: { status: 417, excType: 'DataError' } });
    expect(error.message).toContain('Field not permitted in query: colour');
    expect(error.message).toContain('ERPNEXT_ITEM_FILTERS');
    expect(itemLists()).toHaveLength(1);
  });

  it('refuses a malformed filter before asking ERPNext', async () => {
    await expect(collect(client().listItems({ filters: [['item_group', 'equals', 'x']] }))).rejects.toThrow(
      /ERPNEXT_ITEM_FILTERS: condition 1 uses the operator "equals"/,
    );
    expect(double.requests).toHaveLength(0);
  });
});

describe('incremental runs, renames and deletions', () => {
  it('reads only what changed since the last run (the boundary row again: at least once)', async () => {
    double.addItems(10);
    const first = await collect(client().listItems());
    const since = first.at(-1)!.modified;
    double.updateItem('ITEM-0002', { brand: 'Acme' });
    double.updateItem('ITEM-0005', { disabled: 1 });
    const changed = await collect(client().listItems({ modifiedSince: since }));
    expect(names(changed)).toEqual(['ITEM-0010', 'ITEM-0002', 'ITEM-0005']);
    expect(changed[1]).toMatchObject({ brand: 'Acme', disabled: false });
    expect(changed[2].disabled).toBe(true);
    expect(JSON.parse(itemLists().at(-1)!.query.filters)).toEqual([['modified', '>=', since]]);
  });

  it('sees a rename as a new name (newer modified) and the old one missing; no Deleted Document', async () => {
    double.addItems(3);
    const since = (await collect(client().listItems())).at(-1)!.modified;
    double.renameItem('ITEM-0001', 'ITEM-RENAMED');
    expect(names(await collect(client().listItems({ modifiedSince: since })))).toEqual(['ITEM-0003', 'ITEM-RENAMED']);
    expect(await client().listItemNames()).toEqual(['ITEM-0002', 'ITEM-0003', 'ITEM-RENAMED']);
    expect(await client().getItem('ITEM-0001')).toBeUndefined();
    expect(await client().getItem('ITEM-RENAMED')).toMatchObject({ itemCode: 'ITEM-RENAMED' });
    const manager = double.addApiUser('admin@example.com', ['Item', 'File', 'Deleted Document']);
    expect(await collect(client(manager).deletedSince('Item', since))).toEqual([]);
  });

  it('reads deletions from Deleted Document when the user may, and says why not otherwise', async () => {
    double.addItems(4);
    const since = double.now();
    double.deleteItem('ITEM-0003');
    double.deleteItem('ITEM-0001');
    const manager = double.addApiUser('admin@example.com', ['Item', 'File', 'Deleted Document']);
    const deleted = await collect(client(manager).deletedSince('Item', since));
    expect(deleted.map((row) => row.deletedName)).toEqual(['ITEM-0003', 'ITEM-0001']);
    expect(deleted[0]).toMatchObject({ deletedDoctype: 'Item', creation: expect.stringMatching(/^\d{4}-/) });

    const error = await failure(collect(client().deletedSince('Item', since)));
    expect(error).toMatchObject({ kind: 'forbidden', details: { status: 403, excType: 'PermissionError' } });
    expect(error.message).toContain('System Manager');
  });

  it('reads removed attachments from Deleted Document too', async () => {
    double.addItem({ item_code: 'A' });
    const file = double.addFile({ attachedTo: 'A', fileName: 'a.jpg', content: Buffer.from('a') });
    const since = double.now();
    double.deleteFile(file.name);
    const manager = double.addApiUser('admin@example.com', ['Item', 'File', 'Deleted Document']);
    const deleted = await collect(client(manager).deletedSince('File', since));
    expect(deleted.map((row) => [row.deletedDoctype, row.deletedName])).toEqual([['File', file.name]]);
  });
});

describe('getItem', () => {
  it('maps an Item, and answers undefined for a missing one', async () => {
    double.addItem({
      item_code: 'SKU/ü 1',
      item_name: 'Tea',
      item_group: 'Teas',
      brand: 'Acme',
      image: '/files/t.jpg',
    });
    const item = await client().getItem('SKU/ü 1');
    expect(item).toEqual<ErpNextItem>({
      name: 'SKU/ü 1',
      itemCode: 'SKU/ü 1',
      itemName: 'Tea',
      itemGroup: 'Teas',
      brand: 'Acme',
      disabled: false,
      image: '/files/t.jpg',
      modified: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/) as string,
    });
    expect(await client().getItem('missing')).toBeUndefined();
    expect(double.requestsTo('/api/resource/Item/missing')).toHaveLength(1); // a 404 is not retried
  });

  it('reaches names that are URL dot segments through a filter', async () => {
    double.addItem({ item_code: '..' });
    expect((await client().getItem('..'))?.name).toBe('..');
    expect(await client().getItem('.')).toBeUndefined();
  });
});

describe('files', () => {
  it("lists the File rows of given items in batches that keep the URL under nginx's limit", async () => {
    const long = Array.from({ length: 200 }, (_, index) => `${'Very long item name '.repeat(3)}${index}`);
    for (const name of long) {
      double.addItem({ item_code: name });
      double.addFile({
        attachedTo: name,
        fileName: `${name.length}-${name.slice(-3).trim()}.jpg`,
        content: Buffer.from(name),
      });
    }
    const files = await collect(client().listItemFiles({ names: long }));
    expect(files).toHaveLength(200);
    expect(new Set(files.map((file) => file.attachedToName))).toEqual(new Set(long));
    const requests = double.requestsTo('/api/resource/File');
    expect(requests.length).toBeGreaterThan(1);
    expect(requests.every((request) => request.status === 200)).toBe(true);
    for (const request of requests) expect(request.query.limit_page_length).toBe('500');
  });

  it('finds attachments added since a time although the Item itself did not change', async () => {
    double.addItem({ item_code: 'A' });
    const since = double.now();
    const itemModified = double.items()[0].modified;
    double.addFile({ attachedTo: 'A', fileName: 'new.png', content: Buffer.from('png') });
    expect(double.items()[0].modified).toBe(itemModified);
    expect(await collect(client().listItems({ modifiedSince: since }))).toEqual([]);
    const files = await collect(client().listItemFiles({ modifiedSince: since }));
    expect(files.map((file) => file.fileUrl)).toEqual(['/files/new.png']);
  });

  it('combines the image field and image attachments, each URL once, without other files', async () => {
    double.addFile({ fileName: 'main.jpg', content: Buffer.from('main') });
    double.addItem({ item_code: 'A', image: '/files/main.jpg' });
    double.addFile({ attachedTo: 'A', fileName: 'side.PNG', content: Buffer.from('side'), isPrivate: true });
    double.addFile({ attachedTo: 'A', fileName: 'manual.pdf', content: Buffer.from('%PDF') });
    const item = (await client().getItem('A'))!;
    const files: ErpNextFile[] = await collect(client().listItemFiles({ names: ['A'] }));
    expect(files.map((file) => file.fileName)).toEqual(expect.arrayContaining(['main.jpg', 'side.PNG']));
    expect(files).toHaveLength(2); // not the PDF
    const refs = itemImageRefs(item, files);
    expect(refs.map(({ url, isPrivate, source }) => ({ url, isPrivate, source }))).toEqual([
      { url: '/files/main.jpg', isPrivate: false, source: 'image' },
      { url: '/private/files/side.PNG', isPrivate: true, source: 'attachment' },
    ]);
    expect(refs[0].file?.attachedToField).toBe('image');
  });

  it('fetches public files without the token and private ones with it', async () => {
    double.addItem({ item_code: 'A' });
    double.addFile({ attachedTo: 'A', fileName: 'tea #1 (ü) 100%.jpg', content: Buffer.from('public') });
    const secret = double.addFile({
      attachedTo: 'A',
      fileName: 'closed.jpg',
      content: Buffer.from('private'),
      isPrivate: true,
    });
    expect((await client().fetchFile('/files/tea #1 (ü) 100%.jpg')).toString()).toBe('public');
    expect((await client().fetchFile(`/private/files/closed.jpg?fid=${secret.name}`)).toString()).toBe('private');
    expect(double.requests.map(({ path, authorization, status }) => ({ path, authorization, status }))).toEqual([
      { path: '/files/tea #1 (ü) 100%.jpg', authorization: false, status: 200 },
      { path: '/private/files/closed.jpg', authorization: true, status: 200 },
    ]);
  });

  it('reports a missing file as not_found and an unreadable private one as forbidden, without retrying', async () => {
    double.addItem({ item_code: 'A' });
    double.addFile({ attachedTo: 'A', fileName: 'p.jpg', content: Buffer.from('p'), isPrivate: true });
    expect(await failure(client().fetchFile('/files/none.jpg'))).toMatchObject({
      kind: 'not_found',
      details: { status: 404 },
    });
    const outsider = double.addApiUser('clerk@example.com', ['File']);
    expect((await failure(client(outsider).fetchFile('/private/files/p.jpg'))).kind).toBe('forbidden');
    expect(double.requests).toHaveLength(2);
  });

  it('refuses a file over the size limit', async () => {
    double.addFile({ fileName: 'big.jpg', content: Buffer.alloc(5000) });
    const error = await failure(client(reader, { maxFileBytes: 1000 }).fetchFile('/files/big.jpg'));
    expect(error.kind).toBe('too_large');
    expect(error.message).toContain('1000 bytes');
  });
});

describe("the token's reach", () => {
  let other: http.Server;
  let seen: http.IncomingHttpHeaders[];
  let otherUrl: string;

  beforeEach(async () => {
    seen = [];
    other = http.createServer((request, response) => {
      seen.push(request.headers);
      response.writeHead(200, { 'content-type': 'image/jpeg' }).end('from elsewhere');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });

  it('does not follow a redirect to another origin with the token', async () => {
    double.addItem({ item_code: 'A' });
    double.addFile({ attachedTo: 'A', fileName: 'moved.jpg', content: Buffer.from('x'), isPrivate: true });
    double.redirect('/private/files/moved.jpg', `${otherUrl}/bucket/moved.jpg?signature=abc`);
    expect((await client().fetchFile('/private/files/moved.jpg')).toString()).toBe('from elsewhere');
    expect(double.requests[0].authorization).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0].authorization).toBeUndefined();
  });

  it("keeps the token on a redirect within ERPNext's origin", async () => {
    double.addItem({ item_code: 'A' });
    double.addFile({ attachedTo: 'A', fileName: 'new.jpg', content: Buffer.from('new'), isPrivate: true });
    double.redirect('/private/files/old.jpg', '/private/files/new.jpg', 301);
    expect((await client().fetchFile('/private/files/old.jpg')).toString()).toBe('new');
    expect(double.requests.map((request) => [request.path, request.authorization])).toEqual([
      ['/private/files/old.jpg', true],
      ['/private/files/new.jpg', true],
    ]);
  });

  it('fetches an absolute image URL on another host without the token', async () => {
    expect((await client().fetchFile(`${otherUrl}/cdn/pic.jpg`)).toString()).toBe('from elsewhere');
    expect(seen[0].authorization).toBeUndefined();
  });
});

describe('addresses', () => {
  const stubDns =
    (table: Record<string, string>): LookupFunction =>
    (hostname, _options, callback) => {
      const address = table[hostname];
      if (!address) return callback(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }), []);
      callback(null, [{ address, family: 4 }]);
    };

  it('trusts the host named by ERPNEXT_URL on a private address', async () => {
    double.addItem({ item_code: 'A' });
    const port = new URL(double.url).port;
    const erp = client(reader, {
      url: `http://erp.internal:${port}`,
      lookup: stubDns({ 'erp.internal': '127.0.0.1' }),
    });
    expect(await erp.listItemNames()).toEqual(['A']);
  });

  it('refuses an ERPNEXT_URL that resolves to the instance-metadata address, before connecting', async () => {
    connects.length = 0;
    const erp = client(reader, { url: 'http://erp.internal', lookup: stubDns({ 'erp.internal': '169.254.169.254' }) });
    const error = await failure(erp.listItemNames());
    expect(error.kind).toBe('refused');
    expect(error.message).toContain('instance-metadata');
    expect(connects).toEqual([]);
  });

  it('refuses a redirect to a private host other than ERPNext', async () => {
    double.redirect('/files/a.jpg', 'http://10.1.2.3/a.jpg');
    const error = await failure(client().fetchFile('/files/a.jpg'));
    expect(error.kind).toBe('refused');
    expect(error.message).toMatch(/10\.1\.2\.3 is private/);
  });
});

describe('retries', () => {
  beforeEach(() => {
    double.addItems(3);
  });

  it('honours Retry-After on a 429, then succeeds', async () => {
    double.injectFault({ kind: 'status', status: 429, retryAfter: '1' });
    expect(await client().listItemNames()).toHaveLength(3);
    const [limited, retried] = itemLists();
    expect([limited.status, retried.status]).toEqual([429, 200]);
    expect(retried.at - limited.at).toBeGreaterThanOrEqual(950);
    expect(logs.some((entry) => entry.level === 'warn' && /HTTP 429/.test(entry.message))).toBe(true);
  });

  it('retries 500, 502, 503, a reset connection and a hung request, then succeeds', async () => {
    for (const fault of [
      { kind: 'status', status: 500 },
      { kind: 'status', status: 502 },
      { kind: 'status', status: 503 },
      { kind: 'reset' },
      { kind: 'hang' },
    ] as const) {
      double.requests.length = 0;
      double.injectFault(fault);
      expect(
        await client(reader, { timeoutMs: 300, retry: { retries: 1, minDelayMs: 1 } }).listItemNames(),
      ).toHaveLength(3);
      expect(itemLists().map((request) => request.status)).toEqual([
        fault.kind === 'status' ? fault.status : fault.kind,
        200,
      ]);
    }
  });

  it('gives up after the configured retries with the last error and the count', async () => {
    double.injectFault({ kind: 'status', status: 503 }, { times: 10 });
    const error = await failure(client().listItemNames());
    expect(error).toMatchObject({ kind: 'server', details: { status: 503, attempts: 4 } });
    expect(error.message).toContain('gave up after 4 attempts');
    expect(itemLists()).toHaveLength(4);
  });

  it('does not retry other 4xx: 401, 403, 404, 417', async () => {
    const wrong = { ...reader, secret: 'not-the-secret' };
    expect((await failure(client(wrong).listItemNames())).kind).toBe('auth');
    expect((await failure(client(double.addApiUser('x@example.com', [])).listItemNames())).kind).toBe('forbidden');
    expect(await client().getItem('missing')).toBeUndefined();
    expect((await failure(client().listItemNames({ filters: [['nope', '=', 1]] }))).kind).toBe('invalid_query');
    expect(double.requests).toHaveLength(4);
  });

  it('reports an unreachable ERPNext after retrying, naming ERPNEXT_URL', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await failure(client(reader, { url: `http://127.0.0.1:${port}` }).listItemNames());
    expect(error.kind).toBe('unreachable');
    expect(error.message).toMatch(/ERPNEXT_URL.*connection refused \(ECONNREFUSED\).*gave up after 4 attempts/s);
  });
});

describe('errors, timeouts and aborts', () => {
  it('says what to check when the key pair is refused', async () => {
    const error = await failure(client({ ...reader, secret: 'wrong' }).whoAmI());
    expect(error).toMatchObject({ kind: 'auth', details: { status: 401, excType: 'AuthenticationError' } });
    expect(error.message).toMatch(/ERPNEXT_API_KEY and ERPNEXT_API_SECRET/);
    expect(await client().whoAmI()).toBe('sync@example.com');
  });

  it('times out a request that hangs, and reports it after the retries', async () => {
    double.injectFault({ kind: 'hang' }, { times: 3 });
    const started = performance.now();
    const error = await failure(
      client(reader, { timeoutMs: 200, retry: { retries: 2, minDelayMs: 1 } }).listItemNames(),
    );
    expect(error.kind).toBe('timeout');
    expect(error.message).toContain('no answer within 200 ms');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('stops at once when the caller aborts, during a request or while waiting to retry', async () => {
    double.injectFault({ kind: 'hang' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutting down')), 100);
    await expect(client().listItemNames({ signal: controller.signal })).rejects.toThrow('shutting down');

    double.injectFault({ kind: 'status', status: 503, retryAfter: '30' });
    const waiting = new AbortController();
    const started = performance.now();
    setTimeout(() => waiting.abort(new Error('stop waiting')), 100);
    await expect(client().listItemNames({ signal: waiting.signal })).rejects.toThrow('stop waiting');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses settings it cannot use, saying what to write', () => {
    const make =
      (url: string, apiKey = 'k', apiSecret = 's') =>
      () =>
        client(reader, { url, apiKey, apiSecret });
    expect(make('erp.example.com')).toThrow(/ERPNEXT_URL .* is not a URL/);
    expect(make('https://erp.example.com/app')).toThrow(/origin only \(e\.g\. https:\/\/erp\.example\.com\)/);
    expect(make('https://user:pw@erp.example.com')).toThrow(/must not contain a user or password/);
    expect(make('ftp://erp.example.com')).toThrow(/https:\/\/ or http:\/\//);
    expect(make('https://erp.example.com', '')).toThrow(/ERPNEXT_API_KEY and ERPNEXT_API_SECRET must both be set/);
  });
});
