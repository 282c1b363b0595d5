// fetchImage end to end: stubbed DNS answers for the address rules, real local servers on 127.0.0.1
// for everything that must connect. Traffic may go to loopback only; the guard on every socket connect
// (test/support/loopback-only.ts) enforces that, so even a bug in fetch-url.ts cannot send a packet to a
// private or public address.
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ServiceError } from '../../../service/src/errors.js';
import { fetchImage, type UrlFetchPolicy } from '../../../service/src/images/fetch-url.js';
import { connects } from '../../support/loopback-only.js';

// Every connection attempt goes through the loopback guard of test/support/loopback-only.ts (a setup
// file): `connects` lists the attempts that got through, `violations` the ones it blocked.
beforeEach(() => {
  connects.length = 0;
});

// ---------------------------------------------------------------------------------------------------
// Helpers: stub DNS, local servers, policy, expected failures.

function stubDns(table: Record<string, string[]>) {
  const queries: string[] = [];
  const lookup: LookupFunction = (hostname, options, callback) => {
    queries.push(hostname);
    setImmediate(() => {
      const answers = table[hostname];
      if (!answers)
        return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      const list = answers.map((address) => ({ address, family: net.isIP(address) }));
      if (options.all) callback(null, list);
      else callback(null, list[0].address, list[0].family);
    });
  };
  return { lookup, queries };
}

function policy(overrides: Partial<UrlFetchPolicy> = {}): UrlFetchPolicy {
  return {
    allow: [],
    headers: {},
    maxBytes: 1024 * 1024,
    timeoutMs: 5000,
    connectTimeoutMs: 2000,
    maxRedirects: 3,
    lookup: stubDns({}).lookup,
    ...overrides,
  };
}

async function expectFailure(
  promise: Promise<unknown>,
  status: number,
  code: string,
  message?: RegExp,
): Promise<ServiceError> {
  const error: unknown = await promise.then(
    () => new Error('expected the fetch to fail, but it returned bytes'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ServiceError);
  const failure = error as ServiceError;
  expect({ status: failure.status, code: failure.code }, failure.message).toEqual({ status, code });
  if (message) expect(failure.message).toMatch(message);
  expect(failure.message).not.toMatch(/\n\s+at /);
  return failure;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const IMAGE = crypto.randomBytes(3000); // fetchImage returns bytes; decoding is preprocess.ts's job

interface SeenRequest {
  path: string;
  host: string | undefined;
  authorization: string | undefined;
  extra: string | undefined;
  acceptEncoding: string | undefined;
  servername: string | false | null | undefined;
}

interface TestServer {
  port: number;
  /** TCP connections accepted so far, and how many of them have closed. */
  connections: number;
  closed: number;
  requests: SeenRequest[];
  url(path: string, host?: string): string;
}

const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

/** The routes every test server answers (HTTP and HTTPS alike). */
function routes(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const param = (name: string) => url.searchParams.get(name);
  const chain = /^\/chain\/(\d+)$/.exec(url.pathname);
  const slowChain = /^\/slow-chain\/(\d+)$/.exec(url.pathname);
  if (url.pathname === '/img') {
    res.end(IMAGE);
  } else if (url.pathname === '/chunked') {
    // No Content-Length: Node sends Transfer-Encoding: chunked.
    res.writeHead(200, { 'content-type': 'image/jpeg' });
    res.write(IMAGE.subarray(0, 1000));
    res.write(IMAGE.subarray(1000, 2000));
    res.end(IMAGE.subarray(2000));
  } else if (chain) {
    const left = Number(chain[1]);
    if (left === 0) res.end(IMAGE);
    else res.writeHead(302, { location: `/chain/${left - 1}` }).end();
  } else if (slowChain) {
    const left = Number(slowChain[1]);
    setTimeout(
      () => (left === 0 ? res.end(IMAGE) : res.writeHead(302, { location: `/slow-chain/${left - 1}` }).end()),
      150,
    );
  } else if (url.pathname === '/redirect') {
    const to = param('to');
    res.writeHead(Number(param('status') ?? 302), to === null ? {} : { location: to }).end();
  } else if (url.pathname === '/a/b/relative') {
    res.writeHead(302, { location: '../../img' }).end();
  } else if (url.pathname === '/status') {
    res.writeHead(Number(param('code'))).end('upstream error page');
  } else if (url.pathname === '/big-declared') {
    res.writeHead(200, { 'content-length': '10000000' });
    res.write(Buffer.alloc(1000)); // and never more: the fetcher must decide from the header
  } else if (url.pathname === '/stream-forever') {
    res.writeHead(200);
    const timer = setInterval(() => res.write(Buffer.alloc(512)), 5);
    res.on('close', () => clearInterval(timer));
  } else if (url.pathname === '/hang') {
    // Accepts the request and never answers.
  } else if (url.pathname === '/stall-body') {
    res.writeHead(200, { 'content-length': '1000' });
    res.write(Buffer.alloc(10));
  } else if (url.pathname === '/truncated') {
    res.writeHead(200, { 'content-length': '1000' });
    res.write(Buffer.alloc(10), () => setTimeout(() => req.socket.destroy(), 20));
  } else if (url.pathname === '/reset') {
    req.socket.destroy();
  } else {
    res.writeHead(404).end();
  }
}

async function startServer(tlsOptions?: { key: string; cert: string }): Promise<TestServer> {
  const handler: http.RequestListener = (req, res) => {
    state.requests.push({
      path: req.url ?? '',
      host: req.headers.host,
      authorization: req.headers.authorization,
      extra: req.headers['x-extra'] as string | undefined,
      acceptEncoding: req.headers['accept-encoding'],
      servername: (req.socket as tls.TLSSocket).servername,
    });
    routes(req, res);
  };
  const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
  const state: TestServer = {
    port: 0,
    connections: 0,
    closed: 0,
    requests: [],
    url: (path, host = '127.0.0.1') => `${tlsOptions ? 'https' : 'http'}://${host}:${state.port}${path}`,
  };
  server.on('connection', (socket: net.Socket) => {
    state.connections += 1;
    socket.on('close', () => (state.closed += 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as net.AddressInfo).port;
  running.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return state;
}

/** A TCP listener that accepts and never says a word (stalls a TLS handshake). */
async function startSilentServer(): Promise<{ port: number; connections: number; closed: number }> {
  const sockets: net.Socket[] = [];
  const state = { port: 0, connections: 0, closed: 0 };
  const server = net.createServer((socket) => {
    sockets.push(socket);
    state.connections += 1;
    socket.resume(); // read (and ignore) the ClientHello so that the client's close is noticed
    socket.on('close', () => (state.closed += 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  running.push({
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---------------------------------------------------------------------------------------------------

describe('URL syntax → 400 invalid_url', () => {
  it.each([
    ['not a url', /not a valid absolute URL/],
    ['/relative/path.jpg', /not a valid absolute URL/],
    ['ftp://images.test/a.jpg', /http:\/\/ or https:\/\//],
    ['file:///etc/passwd', /http:\/\/ or https:\/\//],
    ['javascript:alert(1)', /http:\/\/ or https:\/\//],
    ['gopher://127.0.0.1:6379/_FLUSHALL', /http:\/\/ or https:\/\//],
    ['http://user:pass@images.test/a.jpg', /credentials/],
    ['http://user@images.test/a.jpg', /credentials/],
    ['https://:secret@images.test/a.jpg', /credentials/],
    ['http://[fe80::1%25eth0]/', /not a valid absolute URL/],
    ['http://1.2.3.4.5/', /not a valid absolute URL/],
    [`http://images.test/${'a'.repeat(9000)}`, /longer than 8192/],
  ])('%s', async (url, message) => {
    const dnsStub = stubDns({ 'images.test': ['127.0.0.1'] });
    await expectFailure(
      fetchImage(url, policy({ lookup: dnsStub.lookup, allow: ['images.test'] })),
      400,
      'invalid_url',
      message,
    );
    expect(dnsStub.queries).toEqual([]);
    expect(connects).toEqual([]);
  });
});

describe('refused addresses → 400 url_refused, no DNS-to-connect window, no connection', () => {
  // [url, DNS answers, IMAGE_URL_ALLOW, expected words in the message]
  const CASES: [string, Record<string, string[]>, string[], RegExp][] = [
    // Names resolving into refused ranges (IPv4).
    [
      'http://victim.test/a.jpg',
      { 'victim.test': ['127.0.0.1'] },
      [],
      /victim\.test resolves to 127\.0\.0\.1, which is loopback/,
    ],
    ['http://victim.test/', { 'victim.test': ['127.8.9.10'] }, [], /loopback/],
    ['http://victim.test/', { 'victim.test': ['10.0.0.1'] }, [], /private \(RFC 1918\)/],
    ['http://victim.test/', { 'victim.test': ['172.16.5.4'] }, [], /private/],
    ['http://victim.test/', { 'victim.test': ['192.168.0.10'] }, [], /private/],
    ['http://victim.test/', { 'victim.test': ['100.64.1.1'] }, [], /carrier-grade NAT/],
    ['http://victim.test/', { 'victim.test': ['169.254.169.254'] }, [], /instance-metadata/],
    ['http://victim.test/', { 'victim.test': ['169.254.1.2'] }, [], /link-local/],
    ['http://victim.test/', { 'victim.test': ['0.0.0.0'] }, [], /unspecified/],
    ['http://victim.test/', { 'victim.test': ['255.255.255.255'] }, [], /broadcast/],
    ['http://victim.test/', { 'victim.test': ['224.0.0.251'] }, [], /multicast/],
    ['http://victim.test/', { 'victim.test': ['192.0.2.10'] }, [], /reserved or documentation/],
    ['http://victim.test/', { 'victim.test': ['198.51.100.1'] }, [], /reserved or documentation/],
    ['http://victim.test/', { 'victim.test': ['203.0.113.5'] }, [], /reserved or documentation/],
    ['http://victim.test/', { 'victim.test': ['240.1.2.3'] }, [], /reserved/],
    // IPv6 and IPv6 forms carrying IPv4.
    ['http://victim.test/', { 'victim.test': ['::1'] }, [], /loopback/],
    ['http://victim.test/', { 'victim.test': ['::'] }, [], /unspecified/],
    ['http://victim.test/', { 'victim.test': ['fe80::1'] }, [], /link-local/],
    ['http://victim.test/', { 'victim.test': ['fc00::5'] }, [], /unique-local/],
    ['http://victim.test/', { 'victim.test': ['fd00:ec2::254'] }, [], /instance-metadata/],
    ['http://victim.test/', { 'victim.test': ['ff05::2'] }, [], /multicast/],
    ['http://victim.test/', { 'victim.test': ['2001:db8::5'] }, [], /documentation/],
    ['http://victim.test/', { 'victim.test': ['::ffff:127.0.0.1'] }, [], /loopback/],
    ['http://victim.test/', { 'victim.test': ['::ffff:10.1.2.3'] }, [], /private/],
    ['http://victim.test/', { 'victim.test': ['::ffff:169.254.169.254'] }, [], /instance-metadata/],
    ['http://victim.test/', { 'victim.test': ['64:ff9b::a00:1'] }, [], /NAT64 address of 10\.0\.0\.1/],
    ['http://victim.test/', { 'victim.test': ['2002:a00:1::1'] }, [], /6to4 address of 10\.0\.0\.1/],
    ['http://victim.test/', { 'victim.test': ['::7f00:1'] }, [], /IPv4-compatible address of 127\.0\.0\.1/],
    // ANY refused answer refuses the host, whatever its position.
    ['http://victim.test/', { 'victim.test': ['93.184.216.34', '10.0.0.1'] }, [], /resolves to 10\.0\.0\.1/],
    ['http://victim.test/', { 'victim.test': ['fd00::1', '2606:4700::1111'] }, [], /resolves to fd00::1/],
    // IP literals, including spellings the URL parser turns into 127.0.0.1 / 10.0.0.1.
    ['http://127.0.0.1/', {}, [], /127\.0\.0\.1 is loopback/],
    ['http://2130706433/', {}, [], /127\.0\.0\.1 is loopback/],
    ['http://0x7f.1/', {}, [], /127\.0\.0\.1 is loopback/],
    ['http://017700000001/', {}, [], /127\.0\.0\.1 is loopback/],
    ['http://127.1:8080/', {}, [], /127\.0\.0\.1 is loopback/],
    ['http://%31%30.0.0.1/', {}, [], /10\.0\.0\.1 is private/],
    ['https://192.168.1.1/', {}, [], /private/],
    ['http://0.0.0.0/', {}, [], /unspecified/],
    ['http://[::]/', {}, [], /unspecified/],
    ['http://[::1]:8080/', {}, [], /::1 is loopback/],
    ['http://[::ffff:127.0.0.1]/', {}, [], /loopback/],
    ['http://[::ffff:a9fe:a9fe]/latest/meta-data/', {}, [], /instance-metadata/],
    ['http://169.254.169.254/latest/meta-data/iam/', {}, [], /instance-metadata/],
    ['http://[fd00:ec2::254]/latest/meta-data/', {}, [], /instance-metadata/],
    // An allow list that does not cover the address.
    ['http://erp.test/', { 'erp.test': ['10.0.6.1'] }, ['10.0.5.0/24', 'other.test'], /private/],
    // Metadata is refused always, whatever IMAGE_URL_ALLOW says.
    ['http://169.254.169.254/', {}, ['169.254.169.254', '169.254.0.0/16', '0.0.0.0/0'], /refused always/],
    ['http://metadata.test/', { 'metadata.test': ['169.254.169.254'] }, ['metadata.test'], /refused always/],
    [
      'http://metadata.test/',
      { 'metadata.test': ['169.254.7.7'] },
      ['metadata.test', '169.254.0.0/16'],
      /refused always/,
    ],
    [
      'http://metadata.test/',
      { 'metadata.test': ['fd00:ec2::254'] },
      ['metadata.test', 'fd00::/8', '::/0'],
      /refused always/,
    ],
    ['http://[fd00:ec2::254]/', {}, ['::/0'], /refused always/],
    ['http://nat64.test/', { 'nat64.test': ['64:ff9b::a9fe:a9fe'] }, ['nat64.test', '64:ff9b::/96'], /refused always/],
  ];

  it.each(CASES)('%s with DNS %j and allow %j', async (url, answers, allow, reason) => {
    const dnsStub = stubDns(answers);
    const failure = await expectFailure(
      fetchImage(url, policy({ allow, lookup: dnsStub.lookup })),
      400,
      'url_refused',
      reason,
    );
    expect(failure.message).toMatch(/IMAGE_URL_ALLOW/);
    expect(connects, 'a refused address got a connection attempt').toEqual([]);
    const { hostname, pathname } = new URL(url);
    // Literals are judged without DNS; names are resolved exactly once.
    expect(dnsStub.queries).toEqual(Object.keys(answers).length > 0 ? [hostname] : []);
    if (pathname.length > 1) expect(failure.message).not.toContain(pathname);
  });

  it('a name pointing at a live loopback server is refused and that server sees no connection', async () => {
    const server = await startServer();
    const dnsStub = stubDns({ 'victim.test': ['127.0.0.1'] });
    await expectFailure(
      fetchImage(server.url('/img', 'victim.test'), policy({ lookup: dnsStub.lookup })),
      400,
      'url_refused',
      /loopback/,
    );
    await expectFailure(fetchImage(server.url('/img'), policy()), 400, 'url_refused', /loopback/);
    expect(server.connections).toBe(0);
    expect(connects).toEqual([]);
  });

  it('uses the system resolver by default (localhost is loopback → refused, nothing connects)', async () => {
    const server = await startServer();
    await expectFailure(
      fetchImage(server.url('/img', 'localhost'), policy({ lookup: undefined })),
      400,
      'url_refused',
      /localhost:\d+ resolves to (127\.0\.0\.1|::1), which is loopback/,
    );
    expect(server.connections).toBe(0);
  });
});

describe('allowed targets (IMAGE_URL_ALLOW) on the local server', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startServer();
  });

  it.each([
    ['a CIDR', '127.0.0.1', {}, ['127.0.0.1/32']],
    ['a CIDR, decimal literal', '2130706433', {}, ['127.0.0.0/8']],
    ['a hostname', 'images.test', { 'images.test': ['127.0.0.1'] }, ['images.test']],
    ['a hostname, other case and trailing dot', 'IMAGES.test.', { 'images.test.': ['127.0.0.1'] }, ['images.test']],
    ['a CIDR covering what a name resolves to', 'cdn.test', { 'cdn.test': ['127.0.0.1'] }, ['127.0.0.0/8']],
  ])('permitted by %s (%s)', async (_why, host, answers, allow) => {
    const dnsStub = stubDns(answers);
    const bytes = await fetchImage(server.url('/img', host), policy({ allow, lookup: dnsStub.lookup }));
    expect(bytes.equals(IMAGE)).toBe(true);
    expect(connects).toEqual([`127.0.0.1:${server.port}`]);
    expect(dnsStub.queries.length).toBeLessThanOrEqual(1);
    expect(server.requests[0].host).toBe(new URL(server.url('/', host)).host);
    expect(server.requests[0].acceptEncoding).toBe('identity');
  });

  it('connects to the checked address: a rebinding resolver gets one query and no second chance', async () => {
    const answers = [['127.0.0.1'], ['169.254.169.254'], ['10.0.0.1']];
    const queries: string[] = [];
    const rebinding: LookupFunction = (hostname, _options, callback) => {
      queries.push(hostname);
      const address = answers[Math.min(queries.length - 1, answers.length - 1)][0];
      setImmediate(() => callback(null, [{ address, family: 4 }]));
    };
    const bytes = await fetchImage(
      server.url('/img', 'rebind.test'),
      policy({ allow: ['rebind.test'], lookup: rebinding }),
    );
    expect(bytes.equals(IMAGE)).toBe(true);
    expect(queries).toEqual(['rebind.test']);
    expect(connects).toEqual([`127.0.0.1:${server.port}`]);
  });

  it('returns an empty body as empty bytes (the decoder then answers 415)', async () => {
    const bytes = await fetchImage(server.url('/status?code=204'), policy({ allow: ['127.0.0.1'] }));
    expect(bytes.length).toBe(0);
  });
});

describe.skipIf(!(await ipv6LoopbackWorks()))(
  'allowed IPv6 loopback target (skipped when ::1 cannot listen here)',
  () => {
    it('permits [::1] when IMAGE_URL_ALLOW lists ::1/128', async () => {
      const server = http.createServer(routes);
      await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
      running.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      const { port } = server.address() as net.AddressInfo;
      const bytes = await fetchImage(`http://[::1]:${port}/img`, policy({ allow: ['::1/128'] }));
      expect(bytes.equals(IMAGE)).toBe(true);
      expect(connects).toEqual([`::1:${port}`]);
    });
  },
);

async function ipv6LoopbackWorks(): Promise<boolean> {
  const probe = net.createServer();
  const works = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => resolve(true));
  });
  if (works) await new Promise((resolve) => probe.close(resolve));
  else console.log('IPv6 loopback (::1) is not available on this machine: the IPv6 allowed-path test is skipped.');
  return works;
}

describe('redirects', () => {
  let server: TestServer;
  let dnsStub: ReturnType<typeof stubDns>;
  const allowed = (overrides: Partial<UrlFetchPolicy> = {}) =>
    policy({ allow: ['images.test', '169.254.0.0/16', 'meta.test'], lookup: dnsStub.lookup, ...overrides });
  beforeEach(async () => {
    server = await startServer();
    dnsStub = stubDns({
      'images.test': ['127.0.0.1'],
      'internal.test': ['10.0.0.5'],
      'meta.test': ['169.254.169.254'],
    });
  });

  it('follows a chain of exactly maxRedirects hops, checking every hop', async () => {
    const bytes = await fetchImage(server.url('/chain/3', 'images.test'), allowed({ maxRedirects: 3 }));
    expect(bytes.equals(IMAGE)).toBe(true);
    expect(server.requests.map((request) => request.path)).toEqual(['/chain/3', '/chain/2', '/chain/1', '/chain/0']);
    expect(dnsStub.queries).toEqual(['images.test', 'images.test', 'images.test', 'images.test']);
  });

  it('one hop too many → 502 url_fetch_failed, and the extra hop is not requested', async () => {
    await expectFailure(
      fetchImage(server.url('/chain/3', 'images.test'), allowed({ maxRedirects: 2 })),
      502,
      'url_fetch_failed',
      /redirected more than 2 times/,
    );
    expect(server.requests).toHaveLength(3);
  });

  it('maxRedirects 0 follows nothing', async () => {
    await expectFailure(
      fetchImage(server.url('/chain/1', 'images.test'), allowed({ maxRedirects: 0 })),
      502,
      'url_fetch_failed',
      /more than 0 times/,
    );
    expect(server.requests).toHaveLength(1);
  });

  it.each([301, 302, 303, 307, 308])('follows status %i', async (status) => {
    const bytes = await fetchImage(server.url(`/redirect?status=${status}&to=/img`, 'images.test'), allowed());
    expect(bytes.equals(IMAGE)).toBe(true);
  });

  it('resolves relative and scheme-relative Locations against the current URL', async () => {
    expect((await fetchImage(server.url('/a/b/relative', 'images.test'), allowed())).equals(IMAGE)).toBe(true);
    expect((await fetchImage(server.url('/redirect?to=img', 'images.test'), allowed())).equals(IMAGE)).toBe(true);
    const schemeRelative = `//images.test:${server.port}/img`;
    expect(
      (
        await fetchImage(server.url(`/redirect?to=${encodeURIComponent(schemeRelative)}`, 'images.test'), allowed())
      ).equals(IMAGE),
    ).toBe(true);
    expect(server.requests.map((request) => request.path)).toEqual([
      '/a/b/relative',
      '/img',
      '/redirect?to=img',
      '/img',
      `/redirect?to=${encodeURIComponent(schemeRelative)}`,
      '/img',
    ]);
  });

  it.each([
    [
      'a private name',
      'http://internal.test/secret',
      /redirect from images\.test:\d+\): internal\.test resolves to 10\.0\.0\.5, which is private/,
    ],
    ['the metadata address, even though allowed', 'http://169.254.169.254/latest/meta-data/', /refused always/],
    [
      'a metadata name, even though allowed',
      'http://meta.test/latest/meta-data/',
      /meta\.test resolves to 169\.254\.169\.254.*refused always/,
    ],
    ['the same server by IP, which is not allow-listed', 'http://127.0.0.1:PORT/img', /127\.0\.0\.1 is loopback/],
    ['an IPv6 loopback literal', 'http://[::1]:PORT/img', /::1 is loopback/],
  ])('a hop into %s → 400 url_refused before connecting', async (_what, location, message) => {
    const to = encodeURIComponent(location.replace('PORT', String(server.port)));
    await expectFailure(
      fetchImage(server.url(`/redirect?to=${to}`, 'images.test'), allowed()),
      400,
      'url_refused',
      message,
    );
    expect(connects).toEqual([`127.0.0.1:${server.port}`]);
    expect(server.connections).toBe(1);
  });

  it.each([
    ['ftp://images.test/a.jpg', 400, 'url_refused', /only http and https are followed/],
    ['file:///etc/passwd', 400, 'url_refused', /only http and https are followed/],
    ['http://user:pass@images.test/a.jpg', 400, 'url_refused', /credentials/],
    ['http://[::1', 502, 'url_fetch_failed', /invalid URL/],
  ] as const)('a redirect to %s → %i %s', async (location, status, code, message) => {
    await expectFailure(
      fetchImage(server.url(`/redirect?to=${encodeURIComponent(location)}`, 'images.test'), allowed()),
      status,
      code,
      message,
    );
    expect(server.connections).toBe(1);
  });

  it('a redirect status without Location is a failed fetch', async () => {
    await expectFailure(
      fetchImage(server.url('/redirect?status=302', 'images.test'), allowed()),
      502,
      'url_fetch_failed',
      /HTTP 302/,
    );
  });
});

describe('size limit (MAX_IMAGE_BYTES) → 413 image_too_large', () => {
  let server: TestServer;
  const limited = (maxBytes: number) => policy({ allow: ['127.0.0.1/32'], maxBytes });
  beforeEach(async () => {
    server = await startServer();
  });

  it('accepts a body of exactly the limit, with and without Content-Length', async () => {
    expect((await fetchImage(server.url('/img'), limited(IMAGE.length))).equals(IMAGE)).toBe(true);
    expect((await fetchImage(server.url('/chunked'), limited(IMAGE.length))).equals(IMAGE)).toBe(true);
  });

  it('refuses one byte over the limit, by Content-Length and while streaming chunks', async () => {
    await expectFailure(
      fetchImage(server.url('/img'), limited(IMAGE.length - 1)),
      413,
      'image_too_large',
      /127\.0\.0\.1:\d+ is larger than 2999 bytes \(MAX_IMAGE_BYTES\)/,
    );
    await expectFailure(fetchImage(server.url('/chunked'), limited(IMAGE.length - 1)), 413, 'image_too_large');
  });

  it('refuses early from Content-Length without waiting for the body', async () => {
    const started = Date.now();
    await expectFailure(fetchImage(server.url('/big-declared'), limited(5000)), 413, 'image_too_large');
    expect(Date.now() - started).toBeLessThan(1000);
    await waitFor(() => server.closed === server.connections, 'the server to see its connection closed');
  });

  it('stops an endless stream without length and closes the connection', async () => {
    await expectFailure(fetchImage(server.url('/stream-forever'), limited(20_000)), 413, 'image_too_large');
    await waitFor(() => server.closed === server.connections, 'the server to see its connection closed');
  });
});

describe('timeouts → 504 url_timeout', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startServer();
  });

  it('total timeout: a server that accepts and never answers', async () => {
    const started = Date.now();
    await expectFailure(
      fetchImage(server.url('/hang'), policy({ allow: ['127.0.0.1/32'], timeoutMs: 300 })),
      504,
      'url_timeout',
      /127\.0\.0\.1:\d+ took longer than 300 ms \(IMAGE_URL_TIMEOUT_MS\)/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2000);
    await waitFor(() => server.closed === 1, 'the hanging connection to be destroyed');
  });

  it('total timeout: a body that stalls half-way', async () => {
    await expectFailure(
      fetchImage(server.url('/stall-body'), policy({ allow: ['127.0.0.1/32'], timeoutMs: 300 })),
      504,
      'url_timeout',
    );
    await waitFor(() => server.closed === 1, 'the stalled connection to be destroyed');
  });

  it('the total timeout spans redirects: hops that are each fast enough add up', async () => {
    await expectFailure(
      fetchImage(server.url('/slow-chain/3'), policy({ allow: ['127.0.0.1/32'], timeoutMs: 400 })),
      504,
      'url_timeout',
      /IMAGE_URL_TIMEOUT_MS/,
    );
    expect(server.requests.length).toBeGreaterThanOrEqual(2);
  });

  // A TCP connect that hangs needs a destination that drops SYNs: only a non-loopback address does that
  // reliably (forbidden here), and on loopback a full accept backlog is unreliable because Node accepts
  // continuously. The connect phase (resolve + TCP + TLS handshake) is therefore stalled in the two
  // places a test can hold it: a resolver that never answers, and a listener that never speaks TLS.
  it('connect timeout: the resolver never answers', async () => {
    const silentDns: LookupFunction = () => {};
    const started = Date.now();
    await expectFailure(
      fetchImage('http://slow-dns.test/a.jpg', policy({ lookup: silentDns, connectTimeoutMs: 200, timeoutMs: 10_000 })),
      504,
      'url_timeout',
      /Could not connect to slow-dns\.test within 200 ms \(IMAGE_URL_CONNECT_TIMEOUT_MS\)/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(connects).toEqual([]);
  });

  it('connect timeout: the TCP connection opens but the TLS handshake never completes', async () => {
    const silent = await startSilentServer();
    const started = Date.now();
    await expectFailure(
      fetchImage(
        `https://127.0.0.1:${silent.port}/a.jpg`,
        policy({ allow: ['127.0.0.1/32'], connectTimeoutMs: 200, timeoutMs: 10_000 }),
      ),
      504,
      'url_timeout',
      /IMAGE_URL_CONNECT_TIMEOUT_MS/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(silent.connections).toBe(1);
    await waitFor(() => silent.closed === 1, 'the client to drop the stalled connection');
  });

  it('the connect timeout does not cut a slow response once connected', async () => {
    const bytes = await fetchImage(
      server.url('/slow-chain/0'),
      policy({ allow: ['127.0.0.1/32'], connectTimeoutMs: 100, timeoutMs: 5000 }),
    );
    expect(bytes.equals(IMAGE)).toBe(true);
  });
});

describe('upstream failures → 502 url_fetch_failed', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startServer();
  });

  it.each([404, 403, 500, 503, 304])('final status %i', async (code) => {
    await expectFailure(
      fetchImage(server.url(`/status?code=${code}`), policy({ allow: ['127.0.0.1/32'] })),
      502,
      'url_fetch_failed',
      new RegExp(`answered HTTP ${code}`),
    );
  });

  it('keeps the path and query out of the message (they may carry tokens)', async () => {
    const failure = await expectFailure(
      fetchImage(server.url('/status?code=404&token=SECRET123'), policy({ allow: ['127.0.0.1/32'] })),
      502,
      'url_fetch_failed',
    );
    expect(failure.message).not.toContain('SECRET123');
  });

  it('NXDOMAIN and an empty answer', async () => {
    const dnsStub = stubDns({ 'empty.test': [] });
    await expectFailure(
      fetchImage('http://nowhere.test/a.jpg', policy({ lookup: dnsStub.lookup })),
      502,
      'url_fetch_failed',
      /Could not resolve nowhere\.test \(ENOTFOUND\)/,
    );
    await expectFailure(
      fetchImage('http://empty.test/a.jpg', policy({ lookup: dnsStub.lookup })),
      502,
      'url_fetch_failed',
      /no addresses/,
    );
    expect(connects).toEqual([]);
  });

  it('connection refused', async () => {
    const port = await freePort();
    await expectFailure(
      fetchImage(`http://127.0.0.1:${port}/a.jpg`, policy({ allow: ['127.0.0.1/32'] })),
      502,
      'url_fetch_failed',
      /connection refused \(ECONNREFUSED\)/,
    );
  });

  it('connection reset before a response', async () => {
    await expectFailure(
      fetchImage(server.url('/reset'), policy({ allow: ['127.0.0.1/32'] })),
      502,
      'url_fetch_failed',
      /ECONNRESET/,
    );
  });

  it('connection closed before the announced length arrived', async () => {
    await expectFailure(
      fetchImage(server.url('/truncated'), policy({ allow: ['127.0.0.1/32'] })),
      502,
      'url_fetch_failed',
      /closed before the whole image arrived/,
    );
  });
});

describe('extra headers (IMAGE_URL_HEADERS) go only to hosts IMAGE_URL_ALLOW names', () => {
  let server: TestServer;
  let other: TestServer;
  let headerPolicy: UrlFetchPolicy;
  const TOKEN = 'token api-key:api-secret';
  beforeEach(async () => {
    server = await startServer();
    other = await startServer();
    headerPolicy = policy({
      allow: ['erp.test', '127.0.0.0/8'],
      headers: { Authorization: TOKEN, 'X-Extra': 'yes' },
      lookup: stubDns({ 'erp.test': ['127.0.0.1'], 'cdn.test': ['127.0.0.1'] }).lookup,
    });
  });
  const seen = (target: TestServer) =>
    target.requests.map((request) => [request.host, request.authorization ?? null, request.extra ?? null]);

  it('sent to the named host; not to a host that is only inside an allowed CIDR, nor to the IP', async () => {
    await fetchImage(server.url('/img', 'erp.test'), headerPolicy);
    await fetchImage(server.url('/img', 'cdn.test'), headerPolicy);
    await fetchImage(server.url('/img'), headerPolicy);
    expect(seen(server)).toEqual([
      [`erp.test:${server.port}`, TOKEN, 'yes'],
      [`cdn.test:${server.port}`, null, null],
      [`127.0.0.1:${server.port}`, null, null],
    ]);
  });

  it('kept on a same-origin redirect', async () => {
    await fetchImage(server.url('/redirect?to=/img', 'erp.test'), headerPolicy);
    expect(seen(server)).toEqual([
      [`erp.test:${server.port}`, TOKEN, 'yes'],
      [`erp.test:${server.port}`, TOKEN, 'yes'],
    ]);
  });

  it('dropped on a redirect to another host', async () => {
    await fetchImage(
      server.url(`/redirect?to=${encodeURIComponent(server.url('/img', 'cdn.test'))}`, 'erp.test'),
      headerPolicy,
    );
    expect(seen(server)).toEqual([
      [`erp.test:${server.port}`, TOKEN, 'yes'],
      [`cdn.test:${server.port}`, null, null],
    ]);
  });

  it('dropped on a redirect to another port of the same host (another origin)', async () => {
    await fetchImage(
      server.url(`/redirect?to=${encodeURIComponent(other.url('/img', 'erp.test'))}`, 'erp.test'),
      headerPolicy,
    );
    expect(seen(server)).toEqual([[`erp.test:${server.port}`, TOKEN, 'yes']]);
    expect(seen(other)).toEqual([[`erp.test:${other.port}`, null, null]]);
  });

  it('sent again when a chain comes back to the original origin (the trusted host itself)', async () => {
    const back = server.url('/img', 'erp.test');
    const viaCdn = server.url(`/redirect?to=${encodeURIComponent(back)}`, 'cdn.test');
    await fetchImage(server.url(`/redirect?to=${encodeURIComponent(viaCdn)}`, 'erp.test'), headerPolicy);
    expect(seen(server)).toEqual([
      [`erp.test:${server.port}`, TOKEN, 'yes'],
      [`cdn.test:${server.port}`, null, null],
      [`erp.test:${server.port}`, TOKEN, 'yes'],
    ]);
  });
});

describe('abort signal', () => {
  it('destroys the connection and rejects with the signal reason', async () => {
    const server = await startServer();
    const controller = new AbortController();
    const reason = new Error('client went away');
    setTimeout(() => controller.abort(reason), 50);
    await expect(fetchImage(server.url('/hang'), policy({ allow: ['127.0.0.1/32'] }), controller.signal)).rejects.toBe(
      reason,
    );
    await waitFor(() => server.connections === 1 && server.closed === 1, 'the aborted connection to be destroyed');
  });

  it('an already aborted signal opens nothing', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(
      fetchImage('http://127.0.0.1:9/a.jpg', policy({ allow: ['127.0.0.1/32'] }), controller.signal),
    ).rejects.toThrow('gone');
    expect(connects).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// HTTPS: a self-signed certificate for images.test made here (no fixture, no openssl binary). The
// fetcher uses the system CA store; tests that need the test CA trusted add it by wrapping tls.connect,
// which is what https uses to open its sockets.

describe('https', () => {
  const { key, cert } = selfSignedCertificate('images.test');
  let secure: TestServer;
  let plain: TestServer;
  let dnsStub: ReturnType<typeof stubDns>;
  const trustTestCa = () => {
    const realTlsConnect = tls.connect;
    return vi
      .spyOn(tls, 'connect')
      .mockImplementation(((options: tls.ConnectionOptions, ...rest: unknown[]) =>
        (realTlsConnect as (...args: unknown[]) => tls.TLSSocket)(
          { ...options, ca: [cert] },
          ...rest,
        )) as typeof tls.connect);
  };
  beforeEach(async () => {
    secure = await startServer({ key, cert });
    plain = await startServer();
    dnsStub = stubDns({ 'images.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] });
  });

  it('connects to the checked address with SNI and Host set to the hostname', async () => {
    const spy = trustTestCa();
    try {
      const bytes = await fetchImage(
        secure.url('/img', 'images.test'),
        policy({ allow: ['images.test'], lookup: dnsStub.lookup }),
      );
      expect(bytes.equals(IMAGE)).toBe(true);
    } finally {
      spy.mockRestore();
    }
    expect(secure.requests).toMatchObject([{ servername: 'images.test', host: `images.test:${secure.port}` }]);
    expect(connects).toEqual([`127.0.0.1:${secure.port}`]);
  });

  it('verifies the certificate against the hostname, not the pinned address', async () => {
    const spy = trustTestCa();
    try {
      await expectFailure(
        fetchImage(secure.url('/img', 'other.test'), policy({ allow: ['other.test'], lookup: dnsStub.lookup })),
        502,
        'url_fetch_failed',
        /ERR_TLS_CERT_ALTNAME_INVALID/,
      );
    } finally {
      spy.mockRestore();
    }
  });

  it('an untrusted certificate → 502 url_fetch_failed with the TLS reason', async () => {
    await expectFailure(
      fetchImage(secure.url('/img', 'images.test'), policy({ allow: ['images.test'], lookup: dnsStub.lookup })),
      502,
      'url_fetch_failed',
      /self[- ]signed|SELF_SIGNED|UNABLE_TO_VERIFY/i,
    );
  });

  it('refuses a redirect from https to plain http (400 url_refused) without connecting to it', async () => {
    const spy = trustTestCa();
    try {
      const downgrade = encodeURIComponent(plain.url('/img', 'images.test'));
      await expectFailure(
        fetchImage(
          secure.url(`/redirect?to=${downgrade}`, 'images.test'),
          policy({ allow: ['images.test'], lookup: dnsStub.lookup }),
        ),
        400,
        'url_refused',
        /from https to plain http/,
      );
    } finally {
      spy.mockRestore();
    }
    expect(secure.requests).toHaveLength(1);
    expect(plain.connections).toBe(0);
  });
});

/** A self-signed P-256 certificate (SAN: the name and 127.0.0.1), DER-encoded by hand. */
function selfSignedCertificate(name: string): { key: string; cert: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = (tag: number, ...content: Buffer[]): Buffer => {
    const body = Buffer.concat(content);
    const length: number[] = [];
    for (let n = body.length; n > 0; n >>= 8) length.unshift(n & 0xff);
    const header = body.length < 0x80 ? [body.length] : [0x80 | length.length, ...length];
    return Buffer.concat([Buffer.from([tag, ...header]), body]);
  };
  const seq = (...content: Buffer[]) => der(0x30, ...content);
  const oid = (dotted: string) => {
    const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
    const bytes = [40 * a + b];
    for (const n of rest) {
      const encoded = [n & 0x7f];
      for (let v = n >> 7; v > 0; v >>= 7) encoded.unshift(0x80 | (v & 0x7f));
      bytes.push(...encoded);
    }
    return der(0x06, Buffer.from(bytes));
  };
  const utcTime = (date: Date) => der(0x17, Buffer.from(`${date.toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`));
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const subject = seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(name)))));
  const now = Date.now();
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, Buffer.concat([Buffer.from([1]), crypto.randomBytes(8)])),
    ecdsaWithSha256,
    subject,
    seq(utcTime(new Date(now - 86_400_000)), utcTime(new Date(now + 86_400_000))),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(
      0xa3,
      seq(
        seq(oid('2.5.29.19'), der(0x04, seq(der(0x01, Buffer.from([0xff]))))), // basicConstraints CA:TRUE
        seq(oid('2.5.29.17'), der(0x04, seq(der(0x82, Buffer.from(name)), der(0x87, Buffer.from([127, 0, 0, 1]))))),
      ),
    ),
  );
  const signature = crypto.sign('sha256', tbs, privateKey);
  const certificate = seq(tbs, ecdsaWithSha256, der(0x03, Buffer.from([0]), signature));
  const pem = certificate
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: `-----BEGIN CERTIFICATE-----\n${pem}\n-----END CERTIFICATE-----\n`,
  };
}
