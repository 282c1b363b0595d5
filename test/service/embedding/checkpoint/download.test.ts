// Download and verification of the checkpoint against a loopback server: the SHA-256 prefix in the file
// name is checked (a damaged download is deleted), progress is shown, and every way a download fails
// ends within seconds with a message naming the three ways to get the model without internet.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  downloadModel,
  ensureDefaultModel,
  ensureModel,
  OFFLINE_HELP,
} from '../../../../service/src/embedding/checkpoint/convert.js';
import { downloadVerified, hashPrefixOf } from '../../../../service/src/embedding/checkpoint/download.js';
import { DownloadError } from '../../../../service/src/embedding/checkpoint/errors.js';
import { ModelError } from '../../../../service/src/embedding/model.js';
import { startFileServer, type FileServer } from '../../../support/file-server.js';
import { connects } from '../../../support/loopback-only.js';

const BODY = randomBytes(1 << 20);
const SHA256 = createHash('sha256').update(BODY).digest('hex');
const GOOD = `/models/weights-${SHA256.slice(0, 8)}.pth`;
const WRONG_PREFIX = SHA256[0] === '0' ? '1' : '0';
const DAMAGED = `/models/weights-${WRONG_PREFIX}${SHA256.slice(1, 8)}.pth`;

let server: FileServer;
const dir = mkdtempSync(path.join(tmpdir(), 'download-test-'));
beforeAll(async () => {
  server = await startFileServer({
    [GOOD]: { kind: 'file', body: BODY, chunks: 8, delayMs: 30 },
    [DAMAGED]: { kind: 'file', body: BODY },
    '/silent/w-abcd.pth': { kind: 'silent' },
    '/stall/w-abcd.pth': { kind: 'stall', body: BODY },
    '/short/w-abcd.pth': { kind: 'short', body: BODY },
    '/error/w-abcd.pth': { kind: 'status', status: 503 },
  });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const target = (name: string) => path.join(dir, name);
const output = () => {
  const lines: string[] = [];
  return { lines, stream: { write: (text: string) => lines.push(text) } };
};
const rejection = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DownloadError);
  return (error as Error).message;
};
const THREE_WAYS = ['npm run model -- --checkpoint FILE', 'models/export.py', 'MODEL_PATH'];

describe('downloadVerified', () => {
  it('downloads a file whose SHA-256 starts with the hex in its name, with a progress line per quarter', async () => {
    const { lines, stream } = output();
    const result = await downloadVerified(server.url(GOOD), target('good.pth'), { progress: stream });
    expect(result).toEqual({ sha256: SHA256, bytes: BODY.length });
    expect(readFileSync(target('good.pth')).equals(BODY)).toBe(true);
    const name = path.basename(GOOD);
    expect(lines[0]).toBe(`Downloading ${name}: 1.0 MB\n`);
    const progress = lines.slice(1).map((line) => /: (\d+)% ([\d.]+)\/1\.0 MB, [\d.]+ MB\/s\n$/.exec(line)?.[1]);
    expect(progress.every((percent) => percent !== undefined)).toBe(true);
    expect(progress.at(-1)).toBe('100');
    expect(progress.length).toBeGreaterThanOrEqual(3); // 8 chunks 30 ms apart: 25 %, 50 %, 75 % and the end
  });

  it('redraws one line on a terminal and ends it with a newline', async () => {
    const { lines, stream } = output();
    await downloadVerified(server.url(GOOD), target('tty.pth'), { progress: { ...stream, isTTY: true } });
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.every((line) => line.startsWith('\r\x1b[K'))).toBe(true);
    expect(lines.at(-1)).toMatch(/100% 1\.0\/1\.0 MB, [\d.]+ MB\/s\n$/);
    expect(lines.slice(0, -1).every((line) => !line.endsWith('\n'))).toBe(true);
  });

  it('deletes a download whose SHA-256 does not start as its name says, and says so', async () => {
    const message = await rejection(downloadVerified(server.url(DAMAGED), target('damaged.pth')));
    expect(message).toContain(
      `its SHA-256 is ${SHA256}, which does not start with ${WRONG_PREFIX}${SHA256.slice(1, 8)}`,
    );
    expect(message).toContain('It was deleted');
    expect(existsSync(target('damaged.pth'))).toBe(false);
  });

  it('takes the hash from the file name the way torch.hub does, and refuses a name without one', () => {
    expect(hashPrefixOf('https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth')).toBe('3dd342df');
    expect(() => hashPrefixOf(server.url('/models/weights.pth'))).toThrow(/does not carry a SHA-256 prefix/);
  });

  it.each([
    ['no answer', '/silent/w-abcd.pth', { connectTimeoutMs: 300 }, /no answer within 0\.3 s/],
    ['a stall mid-body', '/stall/w-abcd.pth', { stallTimeoutMs: 300 }, /stalled \(no data for 0\.3 s\) after 0\.5 MB/],
    ['a closed connection', '/short/w-abcd.pth', {}, /Cannot download .*(terminated|ended|closed|socket)/],
    ['an HTTP error', '/error/w-abcd.pth', {}, /the server answered HTTP 503/],
  ])('fails on %s within seconds and leaves no file', async (_, route, options, expected) => {
    const started = Date.now();
    const message = await rejection(downloadVerified(server.url(route), target('failed.pth'), options));
    expect(message).toMatch(expected);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(existsSync(target('failed.pth'))).toBe(false);
  });
});

describe('downloadModel', () => {
  it('fails fast when nothing answers and names the three ways to get the model offline', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const out = path.join(dir, 'offline', 'efficientnet_b0.onnx');
    const started = Date.now();
    const message = await rejection(downloadModel(out, { url: `http://127.0.0.1:${port}/w-3dd342df.pth` }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(message).toMatch(/connection was refused/);
    expect(message).toContain(OFFLINE_HELP);
    for (const way of THREE_WAYS) expect(message).toContain(way);
    expect(readdirSync(path.dirname(out))).toEqual([]); // the partial download is gone too
  });

  it('does not convert a file that fails its hash check', async () => {
    const out = path.join(dir, 'damaged', 'efficientnet_b0.onnx');
    const message = await rejection(downloadModel(out, { url: server.url(DAMAGED) }));
    expect(message).toMatch(/does not start with/);
    expect(readdirSync(path.dirname(out))).toEqual([]);
  });
});

describe('ensureDefaultModel / ensureModel', () => {
  const log = { info: () => undefined };

  it('does nothing when MODEL_PATH is not the default (the service then reports the missing file)', async () => {
    const before = connects.length;
    const missing = path.join(dir, 'elsewhere', 'model.onnx');
    await ensureDefaultModel(missing, { log, url: server.url(GOOD) });
    expect(existsSync(missing)).toBe(false);
    expect(connects.length).toBe(before);
  });

  it('turns a model directory that cannot be written into a start-up error with a way out', async () => {
    const file = target('a-file');
    writeFileSync(file, '');
    const error = await ensureModel(path.join(file, 'efficientnet_b0.onnx'), { log, url: server.url(GOOD) }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ModelError);
    expect((error as Error).message).toMatch(
      /Cannot write the model beside .*(EEXIST|ENOTDIR).*npm run model -- --out FILE/,
    );
  });

  it('does not download when the model file exists', async () => {
    const requests = server.requests.length;
    expect(await ensureModel(target('good.pth'), { log, url: server.url(GOOD) })).toBe(false);
    expect(server.requests.length).toBe(requests);
  });
});
