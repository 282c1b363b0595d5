// Downloads a checkpoint the way torch.hub does: the hex after the last '-' of the file name is the start
// of the file's SHA-256, checked after the download; a file that fails is deleted. Progress goes to
// stderr (a redrawn line on a terminal, a line per quarter in logs); no answer within seconds fails.
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { DownloadError } from './errors.js';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface DownloadOptions {
  progress?: ProgressStream;
  /** Until the response headers arrive (connect + TLS + first byte). */
  connectTimeoutMs?: number;
  /** Longest pause between two chunks of the body. */
  stallTimeoutMs?: number;
  /** Appended to every failure message that a retry or another way could fix. */
  help?: string;
}

/** torch.hub's HASH_REGEX (`-([a-f0-9]*)\.`) applied to the URL's file name. */
export function hashPrefixOf(url: string): string {
  const name = path.posix.basename(new URL(url).pathname);
  const prefix = /-([a-f0-9]*)\./.exec(name)?.[1];
  if (!prefix) {
    throw new DownloadError(
      `Cannot verify a download from ${url}: its file name does not carry a SHA-256 prefix (NAME-<hex>.pth, as ` +
        'torchvision names its checkpoints).',
    );
  }
  return prefix;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

function progressLine(stream: ProgressStream | undefined, label: string, total: number | undefined) {
  const started = Date.now();
  let lastDraw = 0;
  let lastQuarter = 0;
  const describe = (received: number) => {
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    const amount = total
      ? `${Math.floor((received / total) * 100)}% ${mb(received)}/${mb(total)} MB`
      : `${mb(received)} MB`;
    return `${label}: ${amount}, ${mb(received / seconds)} MB/s`;
  };
  if (stream && !stream.isTTY) stream.write(`${label}: ${total ? `${mb(total)} MB` : 'size unknown'}\n`);
  return {
    update(received: number) {
      if (!stream) return;
      if (stream.isTTY) {
        if (Date.now() - lastDraw < 100) return;
        lastDraw = Date.now();
        stream.write(`\r\x1b[K${describe(received)}`);
      } else if (total) {
        const quarter = Math.floor((received / total) * 4);
        if (quarter > lastQuarter && quarter < 4) {
          lastQuarter = quarter;
          stream.write(`${describe(received)}\n`);
        }
      }
    },
    end(received: number, failed: boolean) {
      if (!stream) return;
      if (stream.isTTY) {
        if (!failed) stream.write(`\r\x1b[K${describe(received)}\n`);
        else if (lastDraw > 0) stream.write('\n'); // keep the last drawn state above the error
      } else if (!failed) stream.write(`${describe(received)}\n`);
    },
  };
}

/** Why a fetch failed, in words: node's fetch says only "fetch failed" and hides the cause. */
function reason(error: unknown, timedOut: string | undefined): string {
  if (timedOut) return timedOut;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  switch (cause?.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve (no internet or no DNS)';
    case 'ECONNREFUSED':
      return 'the connection was refused';
    case 'ECONNRESET':
      return 'the connection was reset';
    default:
      return cause?.message ?? (error as Error).message;
  }
}

/**
 * Downloads `url` to `file` and checks its SHA-256 against the prefix in the URL's file name. On any
 * failure `file` is deleted and a DownloadError says why.
 */
export async function downloadVerified(
  url: string,
  file: string,
  options: DownloadOptions = {},
): Promise<{ sha256: string; bytes: number }> {
  const prefix = hashPrefixOf(url);
  const help = options.help ? ` ${options.help}` : '';
  const controller = new AbortController();
  let timedOut: string | undefined;
  const arm = (ms: number, message: string) =>
    setTimeout(() => {
      timedOut = message;
      controller.abort();
    }, ms);
  const connectMs = options.connectTimeoutMs ?? 10_000;
  const stallMs = options.stallTimeoutMs ?? 30_000;
  let timer = arm(connectMs, `no answer within ${connectMs / 1000} s`);
  const handle = await open(file, 'w', 0o644);
  let received = 0;
  let progress: ReturnType<typeof progressLine> | undefined;
  let verified = false;
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal });
    } catch (error) {
      throw new DownloadError(`Cannot download ${url}: ${reason(error, timedOut)}.${help}`);
    }
    if (!response.ok || !response.body) {
      throw new DownloadError(`Cannot download ${url}: the server answered HTTP ${response.status}.${help}`);
    }
    const length = Number(response.headers.get('content-length'));
    const total = Number.isSafeInteger(length) && length > 0 ? length : undefined;
    progress = progressLine(options.progress, `Downloading ${path.posix.basename(new URL(url).pathname)}`, total);
    const hash = createHash('sha256');
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        clearTimeout(timer);
        timer = arm(stallMs, `the download stalled (no data for ${stallMs / 1000} s)`);
        hash.update(chunk);
        await handle.write(chunk);
        received += chunk.length;
        progress.update(received);
      }
    } catch (error) {
      throw new DownloadError(`Cannot download ${url}: ${reason(error, timedOut)} after ${mb(received)} MB.${help}`);
    }
    if (total !== undefined && received !== total) {
      throw new DownloadError(`Cannot download ${url}: it ended after ${received} of ${total} bytes.${help}`);
    }
    const sha256 = hash.digest('hex');
    if (!sha256.startsWith(prefix)) {
      throw new DownloadError(
        `The file downloaded from ${url} is not the expected one: its SHA-256 is ${sha256}, which does not start ` +
          `with ${prefix} as its name says (a damaged or replaced download). It was deleted.${help}`,
      );
    }
    progress.end(received, false);
    verified = true;
    return { sha256, bytes: received };
  } finally {
    clearTimeout(timer);
    await handle.close();
    if (!verified) {
      progress?.end(received, true);
      await rm(file, { force: true });
    }
  }
}
