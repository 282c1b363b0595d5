// The server against slow, oversized and malformed requests, over real sockets on loopback: timeouts cut
// off slow headers and slow bodies; a refused request (401, 413, 503 busy) is answered before its body is
// read and the connection is closed; uploads beyond the byte budget are refused early with Retry-After;
// every framework-level error keeps the {error, message} shape with a registry code.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkQueue } from '../../../service/src/embedding/work-queue.js';
import { ERROR_CODES } from '../../../service/src/errors.js';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

const apps: TestApp[] = [];
afterEach(async () => {
  for (const t of apps.splice(0)) await t.close();
});

async function listening(env: Record<string, string> = {}) {
  const t = await startTestApp({ env });
  apps.push(t);
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address() as net.AddressInfo;
  return { t, port: address.port };
}

interface RawExchange {
  /** Everything the server sent until it closed the connection (or the deadline). */
  response: string;
  closedByServer: boolean;
  /** Body bytes the client managed to write before the answer came. */
  written: number;
}

/**
 * Sends `head`, then body chunks of `chunk` bytes every `everyMs` until `bodyBytes` are sent, the server
 * answers, or `deadlineMs` passes.
 */
function rawRequest(
  port: number,
  head: string,
  options: { bodyBytes?: number; chunk?: number; everyMs?: number; deadlineMs?: number; headChunks?: number } = {},
): Promise<RawExchange> {
  const { bodyBytes = 0, chunk = 65536, everyMs = 0, deadlineMs = 10_000, headChunks = 1 } = options;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let response = '';
    let written = 0;
    let answered = false;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearInterval(pump);
      socket.destroy();
      resolve({ response, closedByServer, written });
    };
    const deadline = setTimeout(() => finish(false), deadlineMs);
    socket.on('data', (data) => {
      response += data.toString('latin1');
      answered = true;
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
    // Headers, possibly trickled in pieces (slowloris).
    const pieces = Array.from({ length: headChunks }, (_, i) =>
      head.slice(Math.floor((i * head.length) / headChunks), Math.floor(((i + 1) * head.length) / headChunks)),
    );
    let piece = 0;
    const pump = setInterval(
      () => {
        if (done) return;
        if (piece < pieces.length) {
          socket.write(pieces[piece++]!);
          return;
        }
        if (answered || written >= bodyBytes) return;
        const size = Math.min(chunk, bodyBytes - written);
        if (socket.write(Buffer.alloc(size, 0x41))) written += size;
        else written += size;
      },
      Math.max(1, everyMs),
    );
  });
}

const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
const jsonOf = (response: string) => JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { error: string };

describe('slow clients', () => {
  it('slow headers are cut off after HEADERS_TIMEOUT_MS', { timeout: 30_000 }, async () => {
    const { port } = await listening({ HEADERS_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '2000' });
    const started = Date.now();
    const result = await rawRequest(
      port,
      'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200) + '\r\n\r\n',
      {
        headChunks: 200,
        everyMs: 100,
        deadlineMs: 15_000,
      },
    );
    expect(result.closedByServer).toBe(true);
    expect(Date.now() - started).toBeLessThan(8000);
    if (result.response) expect(statusOf(result.response)).toBe(408);
  });

  it('a slow body is cut off after REQUEST_TIMEOUT_MS, with or without a valid key', { timeout: 30_000 }, async () => {
    const { port } = await listening({
      HEADERS_TIMEOUT_MS: '1000',
      REQUEST_TIMEOUT_MS: '2000',
      IMAGE_SEARCH_API_KEY: 'k'.repeat(32),
    });
    for (const key of ['k'.repeat(32), 'wrong-key-wrong-key']) {
      const started = Date.now();
      const result = await rawRequest(
        port,
        'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n' +
          `Image-Search-Api-Key: ${key}\r\nContent-Length: 1000000\r\n\r\n`,
        { bodyBytes: 1_000_000, chunk: 100, everyMs: 200, deadlineMs: 15_000 },
      );
      expect(result.closedByServer, key).toBe(true);
      expect(Date.now() - started).toBeLessThan(8000);
      expect(result.written).toBeLessThan(20_000);
    }
  });
});

describe('refused before the body is read', () => {
  it('401 without a key is answered after the headers, and the connection closes', async () => {
    const { port } = await listening({ IMAGE_SEARCH_API_KEY: 'k'.repeat(32) });
    const result = await rawRequest(
      port,
      'POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n' +
        'Content-Length: 125829120\r\n\r\n',
      { bodyBytes: 120 * 1024 * 1024, everyMs: 5 },
    );
    expect(statusOf(result.response)).toBe(401);
    expect(result.response.toLowerCase()).toContain('connection: close');
    expect(result.closedByServer).toBe(true);
    expect(result.written).toBeLessThan(10 * 1024 * 1024);
  });

  it('413 for a declared 120 MiB upload with a valid key, before reading it', async () => {
    const { port } = await listening({ IMAGE_SEARCH_API_KEY: 'k'.repeat(32) });
    const result = await rawRequest(
      port,
      'POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n' +
        `Image-Search-Api-Key: ${'k'.repeat(32)}\r\nContent-Length: 125829120\r\n\r\n`,
      { bodyBytes: 120 * 1024 * 1024, everyMs: 5 },
    );
    expect(statusOf(result.response)).toBe(413);
    expect(jsonOf(result.response).error).toBe('image_too_large');
    expect(result.closedByServer).toBe(true);
    expect(result.written).toBeLessThan(10 * 1024 * 1024);
  });

  it('an upload without Content-Length is cut at MAX_IMAGE_BYTES (413), not read to the end', async () => {
    const { port } = await listening({ MAX_IMAGE_BYTES: String(1024 * 1024) });
    const socket = net.connect(port, '127.0.0.1');
    let response = '';
    let sent = 0;
    socket.on('data', (d) => (response += d.toString('latin1')));
    socket.on('error', () => undefined);
    const head =
      'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n';
    const preamble =
      '--XX\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n';
    socket.write(head + `${preamble.length.toString(16)}\r\n${preamble}\r\n`);
    const block = Buffer.alloc(64 * 1024, 0x41);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (response || sent > 64 * 1024 * 1024 || socket.destroyed) {
          clearInterval(timer);
          resolve();
          return;
        }
        socket.write(`${block.length.toString(16)}\r\n`);
        socket.write(block);
        socket.write('\r\n');
        sent += block.length;
      }, 2);
    });
    socket.destroy();
    expect(statusOf(response)).toBe(413);
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('upload byte budget', () => {
  it('with the embedding queue full, an upload gets 503 busy unparsed, on a connection that stays open', async () => {
    const { t, port } = await listening({ EMBED_CONCURRENCY: '1', EMBED_QUEUE_MAX: '0' });
    // Hold the only slot with work this test controls (the registry's queue is shared by every embedding).
    let release!: () => void;
    const queue = (t.service.models as unknown as { queue: WorkQueue }).queue;
    const held = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
    // Not even a well-formed form: refused without being parsed (a parsed one would answer 400).
    const bodyBytes = 256 * 1024;
    const head =
      `POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n` +
      `Content-Length: ${bodyBytes}\r\n\r\n`;
    const refused = await rawRequest(port, head, { bodyBytes, chunk: 64 * 1024, deadlineMs: 1500 });
    expect(statusOf(refused.response)).toBe(503);
    expect(jsonOf(refused.response).error).toBe('busy');
    expect(refused.response).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(refused.response).not.toMatch(/\r\nconnection: close\r\n/i);
    expect(refused.written).toBe(bodyBytes);
    expect(refused.closedByServer).toBe(false); // kept alive for the retry
    // A free slot: the same route takes uploads again.
    release();
    await held;
    const body = await multipart({}, { bytes: await images.jpeg(320, 240, 2) });
    expect((await t.app.inject({ method: 'POST', url: '/search', ...body })).statusCode).toBe(200);
  });

  it('uploads beyond UPLOAD_BUDGET_BYTES get 503 busy with Retry-After; the budget is given back', async () => {
    const { t, port } = await listening({
      MAX_IMAGE_BYTES: String(2 * 1024 * 1024),
      UPLOAD_BUDGET_BYTES: String(4 * 1024 * 1024),
      EMBED_QUEUE_MAX: '64',
    });
    const bytes = await images.png(900, 700, 3); // ~1.5 MB: two fit in the budget, not sixteen
    const body = await multipart({ item_id: 'x' }, { bytes });
    const url = `http://127.0.0.1:${port}/search`;
    const answers = await Promise.all(
      Array.from({ length: 16 }, () =>
        fetch(url, { method: 'POST', body: body.payload, headers: body.headers }).then(async (r) => ({
          status: r.status,
          retryAfter: r.headers.get('retry-after'),
          body: (await r.json()) as { error?: string },
        })),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses).toContain(200);
    expect(statuses).toContain(503);
    for (const answer of answers) {
      expect([200, 503]).toContain(answer.status);
      if (answer.status === 503) {
        expect(answer.body.error).toBe('busy');
        expect(answer.retryAfter).toBe('1');
      }
    }
    // All of it came back: sixteen in a row now succeed.
    for (let i = 0; i < 4; i++) {
      const response = await t.app.inject({ method: 'POST', url: '/search', ...body });
      expect(response.statusCode).toBe(200);
    }
  });
});

describe('framework errors keep the error shape', () => {
  it.each([
    ['bad percent-encoding', '/items/a%ZZ', 400, 'invalid_path'],
    ['an overlong UTF-8 sequence', '/items/%C0%AF', 400, 'invalid_path'],
    ['a 13 KB path', `/items/${'x'.repeat(13 * 1024)}`, undefined, undefined],
  ])('GET with %s', async (_, path, status, code) => {
    const { port } = await listening();
    const result = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, { deadlineMs: 5000 });
    const body = jsonOf(result.response);
    expect(Object.keys(ERROR_CODES)).toContain(body.error);
    expect(Object.keys(body).sort()).toEqual(['error', 'message']);
    if (status) expect(statusOf(result.response)).toBe(status);
    if (code) expect(body.error).toBe(code);
    expect(result.response).not.toContain('x'.repeat(300)); // a long URL is never echoed whole
  });

  it('headers over the limit → 431 headers_too_large', async () => {
    const { port } = await listening();
    const result = await rawRequest(port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expect(statusOf(result.response)).toBe(431);
    expect(jsonOf(result.response).error).toBe('headers_too_large');
  });

  it('an unparsable request line → 400 invalid_request', async () => {
    const { port } = await listening();
    const result = await rawRequest(port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(statusOf(result.response)).toBe(400);
    expect(jsonOf(result.response).error).toBe('invalid_request');
  });

  it('a JSON body over the limit says how large a JSON body may be', async () => {
    const { t } = await listening();
    const response = await t.app.inject({
      method: 'PATCH',
      url: '/items/x',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ item_name: 'n'.repeat(200_000) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toEqual({
      error: 'request_too_large',
      message: expect.stringMatching(/JSON body is larger than 65536 bytes/),
    });
  });

  it('an item_id that is not valid UTF-8 is refused, not silently replaced', async () => {
    const { t } = await listening();
    const boundary = 'XXB';
    const bytes = await images.jpeg(64, 48, 1);
    const payload = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="item_id"\r\n\r\n`),
      Buffer.from([0x61, 0xff, 0xfe, 0x62]),
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n` +
          'Content-Type: image/jpeg\r\n\r\n',
      ),
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const response = await t.app.inject({
      method: 'POST',
      url: '/ingest',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: 'invalid_field', message: 'The field `item_id` is not valid UTF-8.' });
  });
});
