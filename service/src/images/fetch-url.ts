// Fetches an image_url without letting a caller reach the instance's private surroundings (SSRF).
// - Every hop's hostname is resolved once; if ANY address is refused (address-policy.ts) the hop is
//   refused before a socket exists. The connection then goes to exactly the checked addresses (a
//   custom `lookup` hands them to net.connect), so there is no second lookup to rebind; Host and TLS
//   SNI/certificate checks still use the hostname.
// - IMAGE_URL_HEADERS (e.g. an ERPNext `Authorization: token ...`) are sent only to a URL whose host
//   IMAGE_URL_ALLOW lists by name (or as a single IP), and only while redirects stay on that URL's
//   origin: a caller cannot make the service hand the token to a host of their choosing.
// - Errors name the host only; paths and query strings (which may hold tokens) stay out of messages.
// - fetchUrl is the same fetch for API clients (the ERPNext connector): it answers the final response
//   whatever its status, so the caller can read an error body and decide whether to retry.
import dns, { type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { ServiceError } from '../errors.js';
import { checkAddress, isNamedHost, parseAddress, parseAllowList, type AllowList } from './address-policy.js';

export interface UrlFetchPolicy {
  /** Hostnames and CIDRs allowed although private (IMAGE_URL_ALLOW). */
  allow: string[];
  /** Extra request headers (IMAGE_URL_HEADERS), sent only to hosts `allow` names. */
  headers: Record<string, string>;
  maxBytes: number;
  /** Whole fetch, redirects and body included. */
  timeoutMs: number;
  /** Per hop: name resolution, TCP connect and TLS handshake. */
  connectTimeoutMs: number;
  maxRedirects: number;
  /** Injectable DNS for tests; default dns.lookup (called with all: true). */
  lookup?: LookupFunction;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_URL_LENGTH = 8192;
const DEFAULT_HEADERS = {
  'user-agent': 'erp-image-search (image_url fetch)',
  accept: 'image/*,*/*;q=0.5',
  // The limit counts bytes on the wire; a compressed body could expand past it unnoticed.
  'accept-encoding': 'identity',
};

const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));
const invalidUrl = (message: string) => new ServiceError('invalid_url', message);
const refused = (message: string) => new ServiceError('url_refused', message);
const fetchFailed = (message: string) => new ServiceError('url_fetch_failed', message);
const timedOut = (message: string) => new ServiceError('url_timeout', message);

const compiledAllowLists = new WeakMap<string[], AllowList>();

function allowListOf(entries: string[]): AllowList {
  let compiled = compiledAllowLists.get(entries);
  if (!compiled) {
    compiled = parseAllowList(entries);
    compiledAllowLists.set(entries, compiled);
  }
  return compiled;
}

/** The final (non-redirect) response of fetchUrl; the body is at most policy.maxBytes. */
export interface UrlResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * The image bytes at `url`, or a ServiceError: 400 invalid_url / url_refused, 413 image_too_large,
 * 502 url_fetch_failed, 504 url_timeout. When `signal` aborts, every socket is destroyed and the
 * promise rejects with `signal.reason`.
 */
export async function fetchImage(url: string, policy: UrlFetchPolicy, signal?: AbortSignal): Promise<Buffer> {
  return (await fetchFollowing(url, policy, signal, false)).body;
}

/**
 * Like fetchImage (same address rules, redirects, header scoping, limits and errors), but a non-2xx
 * final answer is returned instead of thrown. Connection failures carry the socket error as `cause`.
 */
export function fetchUrl(url: string, policy: UrlFetchPolicy, signal?: AbortSignal): Promise<UrlResponse> {
  return fetchFollowing(url, policy, signal, true);
}

async function fetchFollowing(
  url: string,
  policy: UrlFetchPolicy,
  signal: AbortSignal | undefined,
  anyStatus: boolean,
): Promise<UrlResponse> {
  const allow = allowListOf(policy.allow);
  const first = parseTarget(url);
  const controller = new AbortController();
  const abort = (reason: unknown) => controller.abort(reason);
  const onCallerAbort = () => abort(signal!.reason);
  if (signal?.aborted) throw signal.reason;
  signal?.addEventListener('abort', onCallerAbort, { once: true });
  const total = setTimeout(
    () =>
      abort(
        timedOut(
          `Fetching the image from ${hostOf(first)} took longer than ${policy.timeoutMs} ms (IMAGE_URL_TIMEOUT_MS).`,
        ),
      ),
    policy.timeoutMs,
  );
  try {
    let target = first;
    let redirectedFrom: string | undefined;
    for (let redirects = 0; ; redirects++) {
      const headers = isNamedHost(target.hostname, allow) && target.origin === first.origin ? policy.headers : {};
      const outcome = await fetchHop({ target, headers, allow, redirectedFrom, anyStatus }, policy, controller.signal);
      if (outcome.response) return outcome.response;
      if (redirects === policy.maxRedirects) {
        throw fetchFailed(
          `${hostOf(first)} redirected more than ${policy.maxRedirects} times (IMAGE_URL_MAX_REDIRECTS); give ` +
            `the final image URL.`,
        );
      }
      redirectedFrom = hostOf(target);
      target = redirectTarget(target, outcome.location);
    }
  } finally {
    clearTimeout(total);
    signal?.removeEventListener('abort', onCallerAbort);
    // Destroys whatever socket is still open (e.g. after an error while reading a body).
    abort(new Error('image fetch finished'));
  }
}

function parseTarget(raw: string): URL {
  if (raw.length > MAX_URL_LENGTH) throw invalidUrl(`image_url is longer than ${MAX_URL_LENGTH} characters.`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl('image_url is not a valid absolute URL; send a full http:// or https:// URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidUrl('image_url must use http:// or https://; other schemes are not fetched.');
  }
  if (url.username || url.password) {
    throw invalidUrl(
      'image_url must not contain credentials (user:password@); configure IMAGE_URL_HEADERS for private files.',
    );
  }
  return url;
}

function redirectTarget(from: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw fetchFailed(`${hostOf(from)} answered with a redirect to an invalid URL.`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw refused(
      `${hostOf(from)} redirected to a ${next.protocol.slice(0, 20)} URL; only http and https are followed.`,
    );
  }
  if (next.username || next.password)
    throw refused(`${hostOf(from)} redirected to a URL with credentials; such redirects are not followed.`);
  if (from.protocol === 'https:' && next.protocol === 'http:') {
    throw refused(
      `${hostOf(from)} redirected from https to plain http (${hostOf(next)}); downgrades are not followed.`,
    );
  }
  return next;
}

type HopOutcome = { response: UrlResponse; location?: undefined } | { response?: undefined; location: string };

/** One request: resolve and check, connect to the checked addresses, then read a redirect or the body. */
function fetchHop(hop: Hop, policy: UrlFetchPolicy, signal: AbortSignal): Promise<HopOutcome> {
  const { target } = hop;
  const host = hostOf(target);
  const hostname = target.hostname.replace(/^\[(.*)\]$/, '$1');
  const secure = target.protocol === 'https:';
  return new Promise<HopOutcome>((resolve, reject) => {
    // Rejections beyond the first are no-ops; the caller's final abort destroys what is still open.
    const done = (error: unknown, outcome?: HopOutcome) => {
      clearTimeout(connectTimer);
      signal.removeEventListener('abort', onAbort);
      if (outcome) resolve(outcome);
      else reject(asError(signal.aborted ? signal.reason : error));
    };
    const onAbort = () => done(signal.reason);
    const connectTimer = setTimeout(
      () =>
        done(
          timedOut(`Could not connect to ${host} within ${policy.connectTimeoutMs} ms (IMAGE_URL_CONNECT_TIMEOUT_MS).`),
        ),
      policy.connectTimeoutMs,
    );
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    resolveChecked(hostname, hop, policy.lookup ?? (dns.lookup as LookupFunction))
      .then((addresses) => {
        if (signal.aborted) return;
        const request = (secure ? https : http).request({
          protocol: target.protocol,
          host: hostname,
          port: target.port || undefined,
          path: `${target.pathname}${target.search}`,
          method: 'GET',
          headers: { ...DEFAULT_HEADERS, ...hop.headers, host: target.host },
          agent: false,
          signal,
          lookup: pinnedLookup(addresses),
          ...(parseAddress(hostname) ? {} : { servername: hostname }),
        });
        request.once('socket', (socket) => {
          socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
        });
        request.on('error', (error) => done(connectionFailure(host, error)));
        request.once('response', (response) => {
          clearTimeout(connectTimer);
          readResponse(response, host, policy.maxBytes, hop.anyStatus).then(
            (outcome) => done(undefined, outcome),
            done,
          );
        });
        request.end();
      })
      .catch(done);
  });
}

interface Hop {
  target: URL;
  /** Extra headers for this hop (empty unless the host is allow-listed by name and on the first origin). */
  headers: Record<string, string>;
  allow: AllowList;
  /** Host of the previous hop when this one is a redirect target. */
  redirectedFrom?: string;
  /** Return a non-2xx final answer (fetchUrl) instead of failing with 502 (fetchImage). */
  anyStatus: boolean;
}

/** All addresses of the hop's host, each checked; refuses the hop if any one is refused. */
async function resolveChecked(hostname: string, hop: Hop, lookup: LookupFunction): Promise<LookupAddress[]> {
  const host = hostOf(hop.target);
  const literal = parseAddress(hostname);
  const answers = literal
    ? [{ address: hostname, family: hostname.includes(':') ? 6 : 4 }]
    : await resolveAll(hostname, host, lookup);
  for (const answer of answers) {
    const address = parseAddress(answer.address);
    if (!address) throw fetchFailed(`The DNS answer for ${host} is not an IP address.`);
    const refusal = checkAddress(address, hostname, hop.allow);
    if (!refusal) continue;
    const subject = literal
      ? `${answer.address} is ${refusal.reason}`
      : `${host} resolves to ${answer.address}, which is ${refusal.reason}`;
    const hint = refusal.always
      ? 'This address is refused always, even if IMAGE_URL_ALLOW lists it.'
      : 'If it is a trusted internal server, add its hostname or a CIDR to IMAGE_URL_ALLOW.';
    const context = hop.redirectedFrom ? ` (redirect from ${hop.redirectedFrom})` : '';
    throw refused(`image_url refused${context}: ${subject}. ${hint}`);
  }
  return answers;
}

function resolveAll(hostname: string, host: string, lookup: LookupFunction): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    const answered = (error: NodeJS.ErrnoException | null, addresses: string | LookupAddress[], family?: number) => {
      if (error) return reject(fetchFailed(`Could not resolve ${host} (${error.code ?? 'lookup failed'}).`));
      const list = typeof addresses === 'string' ? [{ address: addresses, family: family ?? 0 }] : addresses;
      if (list.length === 0) reject(fetchFailed(`${host} has no addresses.`));
      else resolve(list);
    };
    try {
      lookup(hostname, { all: true }, answered);
    } catch (error) {
      answered(error as NodeJS.ErrnoException, []);
    }
  });
}

/** A `lookup` for net.connect that answers with the already-checked addresses: no second DNS query. */
function pinnedLookup(addresses: LookupAddress[]): LookupFunction {
  return (_hostname, options, callback) =>
    process.nextTick(() => {
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
}

function readResponse(
  response: http.IncomingMessage,
  host: string,
  maxBytes: number,
  anyStatus: boolean,
): Promise<HopOutcome> {
  const status = response.statusCode ?? 0;
  const location = response.headers.location;
  if (REDIRECTS.has(status) && location) {
    response.destroy();
    return Promise.resolve({ location });
  }
  if (!anyStatus && (status < 200 || status > 299)) {
    response.destroy();
    return Promise.reject(fetchFailed(`${host} answered HTTP ${status}; the image could not be fetched.`));
  }
  const tooLarge = () =>
    new ServiceError(
      'image_too_large',
      `The image at ${host} is larger than ${maxBytes} bytes (MAX_IMAGE_BYTES). Send a smaller image.`,
    );
  if (Number(response.headers['content-length']) > maxBytes) {
    response.destroy();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    response.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= maxBytes) return void chunks.push(chunk);
      response.destroy();
      reject(tooLarge());
    });
    response.once('end', () =>
      resolve({ response: { status, headers: response.headers, body: Buffer.concat(chunks, received) } }),
    );
    const cutOff = () => reject(fetchFailed(`The connection to ${host} closed before the whole image arrived.`));
    response.on('error', cutOff);
    response.once('close', () => {
      if (!response.complete) cutOff();
    });
  });
}

const CONNECTION_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
};

/** Socket, TLS and HTTP-parser failures as a 502 with the reason (never a stack trace). */
function connectionFailure(host: string, error: NodeJS.ErrnoException): ServiceError {
  const reason = (error.code && CONNECTION_REASONS[error.code]) ?? (error.message.split('\n')[0] ?? '').slice(0, 200);
  const failure = fetchFailed(
    `Could not fetch the image from ${host}: ${reason}${error.code ? ` (${error.code})` : ''}.`,
  );
  failure.cause = error;
  return failure;
}

/** host[:port] of a URL, bounded so that messages stay short. */
function hostOf(url: URL): string {
  return url.host.slice(0, 300);
}
