// One client per ERPNext server: reads the Item catalog, its image attachments and deletions through Frappe's REST
// API only (frappe/api/v1.py, frappe v15), and downloads image files. The lead's sync builds on it.
// - Transport: service/src/images/fetch-url.ts (fetchUrl), so the ERPNext host gets the same treatment as any
//   URL: resolved once and pinned, the instance-metadata address refused always. ERPNEXT_URL's host is
//   allow-listed by name (an operator chose it, so a private address is fine); any other private host, e.g. a
//   redirect target, stays refused. The token goes only to ERPNEXT_URL's origin: fetchUrl drops it on a
//   redirect to another origin, and a file URL on another host is fetched without it.
// - Paging: Frappe answers 20 rows unless told otherwise, so every list names limit_page_length. Pages are
//   keyset pages (limit_start=0, plus "after the last row" filters) rather than offsets: with offsets, an item
//   modified or deleted while a run pages through the list shifts every later row one place, and the row at
//   the page boundary is silently skipped. Incremental runs order by `modified asc, name asc` (an item
//   modified during the run moves behind the cursor and is seen again, later, in its newest state); full name
//   lists order by `name asc` (names do not change order when rows are edited).
// - Retries (p-retry): 429 (honouring Retry-After), 5xx, connection failures and timeouts, with exponential
//   backoff and jitter; never other 4xx. The logger gets the method, path, status and timing: never headers.
import type { LookupFunction } from 'node:net';
import pRetry from 'p-retry';
import { ServiceError } from '../errors.js';
import { fetchUrl, type UrlFetchPolicy, type UrlResponse } from '../images/fetch-url.js';
import { ErpNextError, type ErpNextErrorKind } from './errors.js';
import { normaliseFilters, type FrappeCondition } from './filters.js';

export interface ErpNextLogger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff; doubled per retry, with jitter. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After honoured; a longer one is cut to this. */
  maxRetryAfterMs: number;
}

export interface ErpNextClientOptions {
  /** ERPNEXT_URL: the site's origin, e.g. https://erp.example.com. */
  url: string;
  apiKey: string;
  apiSecret: string;
  logger: ErpNextLogger;
  /** Whole request, body included. */
  timeoutMs?: number;
  /** Name resolution + TCP connect + TLS handshake, per hop. */
  connectTimeoutMs?: number;
  maxRedirects?: number;
  /** Largest image file accepted (MAX_IMAGE_BYTES). */
  maxFileBytes?: number;
  /** Largest API answer (one page of rows). */
  maxResponseBytes?: number;
  /** Rows per list request. */
  pageSize?: number;
  retry?: Partial<RetryPolicy>;
  /** Injectable DNS for tests. */
  lookup?: LookupFunction;
}

export interface ErpNextItem {
  /** Frappe's document name: the item id. */
  name: string;
  itemCode: string | null;
  itemName: string | null;
  itemGroup: string | null;
  brand: string | null;
  disabled: boolean;
  /** The Item's image field (Attach Image): a /files/, /private/files/ or absolute URL. */
  image: string | null;
  /** Frappe's timestamp, `YYYY-MM-DD HH:MM:SS.ffffff` in the site's time zone. */
  modified: string;
}

export interface ErpNextFile {
  name: string;
  fileUrl: string;
  fileName: string | null;
  isPrivate: boolean;
  attachedToName: string;
  attachedToField: string | null;
  contentHash: string | null;
  modified: string;
}

export interface ErpNextDeletion {
  /** The Deleted Document's own name. */
  name: string;
  /** The name the deleted document had (an item id for Items). */
  deletedName: string;
  deletedDoctype: string;
  /** When it was deleted. */
  creation: string;
}

export interface ItemImageRef {
  /** As stored in ERPNext: /files/..., /private/files/... or an absolute URL; pass it to fetchFile. */
  url: string;
  isPrivate: boolean;
  /** The Item's image field, or an attachment. */
  source: 'image' | 'attachment';
  /** The File row, for attachments (and for the image field when its file is also an attachment). */
  file?: ErpNextFile;
}

interface CallOptions {
  signal?: AbortSignal;
}

const ITEM_FIELDS = ['name', 'item_code', 'item_name', 'item_group', 'brand', 'disabled', 'image', 'modified'];
const FILE_FIELDS = [
  'name',
  'file_url',
  'file_name',
  'is_private',
  'attached_to_name',
  'attached_to_field',
  'content_hash',
  'modified',
];
const DELETION_FIELDS = ['name', 'deleted_name', 'deleted_doctype', 'creation'];

/** What the image decoder reads (README: JPEG, PNG, WebP, GIF, AVIF, TIFF, HEIC); other attachments are skipped. */
const IMAGE_EXTENSIONS = new Set(['jpg', 'jpeg', 'jpe', 'png', 'webp', 'gif', 'avif', 'tif', 'tiff', 'heic', 'heif']);

// frappe-bench's nginx refuses request lines over 8 KiB (large_client_header_buffers 4 8k) with 414; name
// batches for the File query stay well below that.
const MAX_QUERY_URL_LENGTH = 6000;

const USER_AGENT = 'erp-image-search (ERPNext sync)';
const DEFAULT_RETRY: RetryPolicy = { retries: 5, minDelayMs: 500, maxDelayMs: 30_000, maxRetryAfterMs: 120_000 };

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** True when a file name or URL ends in an image extension the service decodes. */
export function isImageFileName(nameOrUrl: string): boolean {
  const path = nameOrUrl.split(/[?#]/, 1)[0];
  const extension = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  return extension !== undefined && IMAGE_EXTENSIONS.has(extension);
}

/**
 * The images of an Item: its image field first, then its image attachments, each URL once (the image field's
 * file is normally also an attachment: Frappe attaches Attach Image uploads to the document).
 */
export function itemImageRefs(item: ErpNextItem, files: readonly ErpNextFile[]): ItemImageRef[] {
  const key = (url: string) => url.split('?', 1)[0];
  const own = files.filter((file) => file.attachedToName === item.name);
  const refs: ItemImageRef[] = [];
  const seen = new Set<string>();
  if (item.image) {
    const file = own.find((candidate) => key(candidate.fileUrl) === key(item.image!));
    refs.push({ url: item.image, isPrivate: isPrivateUrl(item.image), source: 'image', file });
    seen.add(key(item.image));
  }
  for (const file of own) {
    if (seen.has(key(file.fileUrl)) || !isImageFileName(file.fileName || file.fileUrl)) continue;
    seen.add(key(file.fileUrl));
    refs.push({ url: file.fileUrl, isPrivate: file.isPrivate, source: 'attachment', file });
  }
  return refs;
}

const isPrivateUrl = (url: string) => url.startsWith('/private/');

export class ErpNextClient {
  private readonly origin: URL;
  private readonly host: string;
  private readonly apiPolicy: UrlFetchPolicy;
  private readonly filePolicy: UrlFetchPolicy;
  private readonly publicFilePolicy: UrlFetchPolicy;
  private readonly retry: RetryPolicy;
  private readonly pageSize: number;
  private readonly logger: ErpNextLogger;

  constructor(options: ErpNextClientOptions) {
    this.origin = parseBaseUrl(options.url);
    this.host = this.origin.host;
    if (!options.apiKey || !options.apiSecret || /[:\s]/.test(options.apiKey) || /\s/.test(options.apiSecret)) {
      throw new Error(
        'ERPNEXT_API_KEY and ERPNEXT_API_SECRET must both be set (no spaces, no colon in the key): generate them ' +
          'in ERPNext under User → Settings → API Access.',
      );
    }
    this.logger = options.logger;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.pageSize = options.pageSize ?? 500;
    // One allow list for both policies: fetch-url compiles it once per array.
    const allow = [this.origin.hostname];
    const common = {
      allow,
      timeoutMs: options.timeoutMs ?? 30_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      maxRedirects: options.maxRedirects ?? 3,
      lookup: options.lookup,
    };
    const authorization = `token ${options.apiKey}:${options.apiSecret}`;
    this.apiPolicy = {
      ...common,
      maxBytes: options.maxResponseBytes ?? 64 * 1024 * 1024,
      headers: { authorization, accept: 'application/json', 'user-agent': USER_AGENT },
    };
    this.filePolicy = {
      ...common,
      maxBytes: options.maxFileBytes ?? 20 * 1024 * 1024,
      headers: { authorization, 'user-agent': USER_AGENT },
    };
    this.publicFilePolicy = { ...this.filePolicy, headers: { 'user-agent': USER_AGENT } };
  }

  /** The user the key belongs to; a cheap start-up check of ERPNEXT_URL and the key pair. */
  async whoAmI(options: CallOptions = {}): Promise<string> {
    const body = await this.getJson('/api/method/frappe.auth.get_logged_user', {}, 'check the API key', options);
    const user = (body as { message?: unknown }).message;
    if (typeof user !== 'string') throw this.badResponse('/api/method/frappe.auth.get_logged_user', 'no user name');
    return user;
  }

  /**
   * Items matching `filters` (ERPNEXT_ITEM_FILTERS), all of them or those modified at or after `modifiedSince`
   * (a Frappe timestamp, e.g. the largest `modified` of the previous run), oldest change first.
   */
  async *listItems(
    options: CallOptions & { filters?: unknown; modifiedSince?: string; pageSize?: number } = {},
  ): AsyncGenerator<ErpNextItem> {
    const filters = normaliseFilters(options.filters ?? []);
    if (options.modifiedSince !== undefined) filters.push(['modified', '>=', options.modifiedSince]);
    for await (const row of this.rows('Item', ITEM_FIELDS, filters, 'modified', options)) yield toItem(row);
  }

  /** Every Item name matching `filters`: compare with the catalog to find deletions and renames. */
  async listItemNames(options: CallOptions & { filters?: unknown; pageSize?: number } = {}): Promise<string[]> {
    const names: string[] = [];
    const filters = normaliseFilters(options.filters ?? []);
    for await (const row of this.rows('Item', ['name'], filters, 'name', options)) names.push(text(row.name)!);
    return names;
  }

  /** One Item, or undefined when it does not exist. */
  async getItem(name: string, options: CallOptions = {}): Promise<ErpNextItem | undefined> {
    if (name === '.' || name === '..') {
      // URL parsers remove these path segments even when encoded, so they are asked for by filter.
      for await (const row of this.rows('Item', ITEM_FIELDS, [['name', '=', name]], 'name', options)) {
        return toItem(row);
      }
      return undefined;
    }
    const path = `/api/resource/Item/${encodeURIComponent(name)}`;
    try {
      const body = await this.getJson(path, {}, `read Item ${JSON.stringify(name)}`, options);
      return toItem(dataOf(body, path, (data) => typeof data === 'object' && data !== null) as Row);
    } catch (error) {
      if (error instanceof ErpNextError && error.kind === 'not_found') return undefined;
      throw error;
    }
  }

  /**
   * File rows attached to Items: those of `names` (asked in batches that keep the URL short), or of all Items;
   * optionally only rows modified at or after `modifiedSince` (adding an attachment does not change the Item's
   * own `modified`, so an incremental run asks for both). Only image files (by extension) are returned.
   */
  async *listItemFiles(
    options: CallOptions & { names?: readonly string[]; modifiedSince?: string; pageSize?: number } = {},
  ): AsyncGenerator<ErpNextFile> {
    const base: FrappeCondition[] = [
      ['attached_to_doctype', '=', 'Item'],
      ['is_folder', '=', 0],
    ];
    if (options.modifiedSince !== undefined) base.push(['modified', '>=', options.modifiedSince]);
    const order = options.modifiedSince === undefined ? 'name' : 'modified';
    const batches = options.names === undefined ? [undefined] : this.nameBatches(options.names, base);
    for (const batch of batches) {
      const filters: FrappeCondition[] = batch ? [...base, ['attached_to_name', 'in', batch]] : base;
      for await (const row of this.rows('File', FILE_FIELDS, filters, order, options)) {
        const file = toFile(row);
        // File has no reliable MIME field across versions; the extension decides (a PDF manual is skipped).
        if (isImageFileName(file.fileName || file.fileUrl)) yield file;
      }
    }
  }

  /**
   * Documents of `doctype` deleted at or after `since`, oldest first, from Frappe's Deleted Document list. Only
   * System Managers may read it by default: without that role this fails with kind 'forbidden', and deletions
   * are found by comparing listItemNames with the catalog instead. Renames leave no Deleted Document either.
   */
  async *deletedSince(doctype: string, since: string, options: CallOptions = {}): AsyncGenerator<ErpNextDeletion> {
    const filters: FrappeCondition[] = [
      ['deleted_doctype', '=', doctype],
      ['creation', '>=', since],
    ];
    for await (const row of this.rows('Deleted Document', DELETION_FIELDS, filters, 'creation', options)) {
      yield {
        name: text(row.name)!,
        deletedName: text(row.deleted_name) ?? '',
        deletedDoctype: text(row.deleted_doctype) ?? doctype,
        creation: text(row.creation) ?? '',
      };
    }
  }

  /**
   * The bytes of a file URL as ERPNext stores it (/files/..., /private/files/...?fid=..., or absolute). The token
   * is sent only to ERPNEXT_URL's origin, and not for public /files/. Fails with kind not_found (404), forbidden
   * (403: the API user cannot read the Item the private file is attached to), too_large, refused, or after
   * retries unreachable/timeout.
   */
  async fetchFile(fileUrl: string, options: CallOptions = {}): Promise<Buffer> {
    const url = this.fileUrl(fileUrl);
    const path = `file ${url.pathname.slice(0, 200)}`;
    // The token goes to ERPNext's origin only, and not for public files (nginx serves those to anyone).
    const withToken = url.origin === this.origin.origin && !url.pathname.startsWith('/files/');
    const policy = withToken ? this.filePolicy : this.publicFilePolicy;
    const response = await this.withRetry(path, () => this.send(url, policy, path, options.signal), options.signal);
    if (response.status >= 200 && response.status <= 299) return response.body;
    throw this.statusError(response, `download ${fileUrl.slice(0, 200)}`);
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Keyset paging over a list: every page is limit_start=0 plus "after the last row seen" conditions. */
  private async *rows(
    doctype: string,
    fields: string[],
    filters: FrappeCondition[],
    order: 'name' | 'modified' | 'creation',
    options: CallOptions & { pageSize?: number },
  ): AsyncGenerator<Row> {
    const pageSize = options.pageSize ?? this.pageSize;
    const path = `/api/resource/${encodeURIComponent(doctype)}`;
    const listFields = fields.includes(order) ? fields : [...fields, order];
    let last: Row | undefined;
    // Guards against a server that ignores the cursor (a page of nothing new would loop for ever). Row order
    // is the database's collation (case-insensitive in MariaDB), so it is not checked with JS comparisons.
    const seen = new Set<string>();
    for (let page = 1; ; page++) {
      const query: Record<string, string> = {
        fields: JSON.stringify(listFields),
        filters: JSON.stringify(last ? [...filters, ...after(order, last).filters] : filters),
        order_by: order === 'name' ? 'name asc' : `${order} asc, name asc`,
        limit_start: '0',
        limit_page_length: String(pageSize),
      };
      if (last && order !== 'name') query.or_filters = JSON.stringify(after(order, last).orFilters);
      const body = await this.getJson(path, query, `list ${doctype} (page ${page})`, options);
      const rows = dataOf(body, path, Array.isArray) as Row[];
      let fresh = 0;
      for (const row of rows) {
        if (typeof row !== 'object' || row === null || typeof row.name !== 'string') {
          throw this.badResponse(path, 'a row without a name');
        }
        last = row;
        const key = order === 'name' ? row.name : `${row.name}\u0000${String(row[order])}`;
        if (seen.has(key)) continue;
        seen.add(key);
        fresh++;
        yield row;
      }
      if (rows.length < pageSize) return;
      if (fresh === 0) throw this.badResponse(path, 'the same rows again (it ignored the paging filters)');
    }
  }

  /** Splits names into batches whose File query URL stays under MAX_QUERY_URL_LENGTH. */
  private nameBatches(names: readonly string[], base: FrappeCondition[]): string[][] {
    // The rest of the URL: fields, base filters, and room for order_by, limits and the paging cursor.
    const overhead = this.listUrlLength(base) + 600;
    const batches: string[][] = [];
    let batch: string[] = [];
    let length = overhead;
    for (const name of names) {
      const cost = new URLSearchParams({ n: `${JSON.stringify(name)},` }).toString().length - 2;
      if (overhead + cost > MAX_QUERY_URL_LENGTH) {
        throw new ErpNextError(
          'bad_response',
          `The Item name ${JSON.stringify(name.slice(0, 80))}… is too long to query.`,
        );
      }
      if (batch.length > 0 && length + cost > MAX_QUERY_URL_LENGTH) {
        batches.push(batch);
        batch = [];
        length = overhead;
      }
      batch.push(name);
      length += cost;
    }
    if (batch.length > 0) batches.push(batch);
    return batches;
  }

  private listUrlLength(filters: FrappeCondition[]): number {
    const query = new URLSearchParams({ fields: JSON.stringify(FILE_FIELDS), filters: JSON.stringify(filters) });
    return this.origin.origin.length + '/api/resource/File?'.length + query.toString().length;
  }

  private async getJson(path: string, query: Record<string, string>, what: string, options: CallOptions) {
    const search = new URLSearchParams(query).toString();
    const url = new URL(`${path}${search ? `?${search}` : ''}`, this.origin);
    const response = await this.withRetry(
      what,
      () => this.send(url, this.apiPolicy, path, options.signal),
      options.signal,
    );
    if (response.status < 200 || response.status > 299) throw this.statusError(response, what);
    try {
      return JSON.parse(response.body.toString('utf8')) as unknown;
    } catch {
      throw this.badResponse(path, 'an answer that is not JSON');
    }
  }

  /** One HTTP exchange. Retryable statuses become errors here (so withRetry sees them); others are returned. */
  private async send(url: URL, policy: UrlFetchPolicy, path: string, signal?: AbortSignal): Promise<UrlResponse> {
    const started = performance.now();
    let response: UrlResponse;
    try {
      response = await fetchUrl(url.href, policy, signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw this.transportError(error, path, policy);
    }
    this.logger.debug(`ERPNext GET ${path} → ${response.status} (${Math.round(performance.now() - started)} ms)`);
    if (response.status === 429 || response.status >= 500) throw this.statusError(response, `GET ${path}`);
    return response;
  }

  private async withRetry<T>(what: string, attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let attempts = 0;
    try {
      return await pRetry(
        () => {
          attempts++;
          return attempt();
        },
        {
          retries: this.retry.retries,
          // The delay is ours (onFailedAttempt): jittered backoff, or the server's Retry-After.
          minTimeout: 0,
          signal,
          shouldRetry: ({ error }) => error instanceof ErpNextError && error.retryable,
          onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
            if (!(error instanceof ErpNextError) || !error.retryable || retriesLeft === 0) return;
            const delay = this.delayBefore(attemptNumber, error.details.retryAfterSeconds);
            this.logger.warn(
              `ERPNext: ${what} failed (${error.message}); attempt ${attemptNumber + 1} of ` +
                `${this.retry.retries + 1} in ${delay} ms.`,
            );
            await sleep(delay, signal);
          },
        },
      );
    } catch (error) {
      if (error instanceof ErpNextError && error.retryable) {
        throw new ErpNextError(error.kind, `${error.message} (gave up after ${attempts} attempts)`, {
          ...error.details,
          attempts,
          cause: error,
        });
      }
      throw error;
    }
  }

  /** Exponential backoff with equal jitter; Retry-After when the server sent one (capped). */
  private delayBefore(attemptNumber: number, retryAfterSeconds: number | undefined): number {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.minDelayMs * 2 ** (attemptNumber - 1));
    const backoff = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    if (retryAfterSeconds === undefined) return backoff;
    return Math.min(this.retry.maxRetryAfterMs, Math.max(backoff, retryAfterSeconds * 1000));
  }

  private fileUrl(fileUrl: string): URL {
    const bad = () =>
      new ErpNextError('bad_response', `ERPNext gave an unusable file URL ${JSON.stringify(fileUrl.slice(0, 200))}.`);
    if (/^https?:\/\//i.test(fileUrl)) {
      try {
        return new URL(fileUrl);
      } catch {
        throw bad();
      }
    }
    if (!fileUrl.startsWith('/')) throw bad();
    // Frappe stores file URLs unencoded ("/files/my photo.jpg"); a private file's may end in "?fid=<File name>".
    const [path, query] = splitOnce(fileUrl, '?');
    const encoded = path.split('/').map(encodeSegment).join('/');
    if (encoded.split('/').some((segment) => segment === '.' || segment === '..')) throw bad();
    return new URL(`${encoded}${query === undefined ? '' : `?${query}`}`, this.origin);
  }

  /** fetch-url's ServiceErrors, reworded for ERPNext (they speak of image_url and its settings). */
  private transportError(error: unknown, path: string, policy: UrlFetchPolicy): unknown {
    if (!(error instanceof ServiceError)) return error;
    const where = `ERPNext at ${this.host} (ERPNEXT_URL), ${path}`;
    const plain = error.message
      .replace(/^Could not fetch the image from [^:]+: /, '')
      .replace(/^image_url refused/, 'refused')
      .replace(/ \(IMAGE_URL_[A-Z_]+\)/g, '')
      .replace(
        / (This address is refused always|If it is a trusted internal server|Send a smaller|give the final).*$/,
        '',
      )
      .replace(/[.;]$/, '');
    const code = (error.cause as NodeJS.ErrnoException | undefined)?.code;
    const reason = code && !plain.includes(code) ? `${plain} (${code})` : plain;
    const make = (kind: ErpNextErrorKind, message: string) => new ErpNextError(kind, message, { cause: error });
    switch (error.code) {
      case 'url_timeout':
        return make(
          'timeout',
          `${where}: no answer within ${policy.timeoutMs} ms (connect within ${policy.connectTimeoutMs} ms). ` +
            'Check that ERPNext is up and not overloaded.',
        );
      case 'url_fetch_failed':
        return /redirected more than/.test(plain)
          ? make('bad_response', `${where}: ${reason}.`)
          : make('unreachable', `${where}: ${reason}. Check ERPNEXT_URL and that ERPNext is running and reachable.`);
      case 'url_refused':
        return make(
          'refused',
          `${where}: ${reason}. Only ERPNEXT_URL's host may be private; instance-metadata addresses never.`,
        );
      case 'image_too_large':
        return make('too_large', `${where}: the answer is larger than ${policy.maxBytes} bytes.`);
      default:
        return make('bad_response', `${where}: ${reason}.`);
    }
  }

  private statusError(response: UrlResponse, what: string): ErpNextError {
    const { status } = response;
    const frappe = frappeError(response.body);
    const detail = [frappe.excType, frappe.message].filter(Boolean).join(': ');
    const said = `ERPNext at ${this.host} answered HTTP ${status}${detail ? ` (${detail})` : ''} to ${what}`;
    const details = { status, excType: frappe.excType, retryAfterSeconds: retryAfter(response.headers['retry-after']) };
    if (status === 401) {
      return new ErpNextError(
        'auth',
        `${said}. Check ERPNEXT_API_KEY and ERPNEXT_API_SECRET (User → Settings → API Access) and that the user ` +
          'is enabled.',
        details,
      );
    }
    if (status === 403) {
      return new ErpNextError(
        'forbidden',
        `${said}. Give the API user (ERPNEXT_API_KEY) a role that may read Item and File (e.g. Item Manager or ` +
          'Stock User); reading Deleted Document needs System Manager.',
        details,
      );
    }
    if (status === 404) return new ErpNextError('not_found', `${said}.`, details);
    if (status === 417) {
      return new ErpNextError(
        'invalid_query',
        `${said}. The filter in ERPNEXT_ITEM_FILTERS is probably invalid: use Item field names and Frappe ` +
          'operators, e.g. [["item_group","=","Products"]].',
        details,
      );
    }
    if (status === 429) return new ErpNextError('rate_limited', `${said}: rate limited.`, details);
    if (status >= 500) return new ErpNextError('server', `${said}.`, details);
    return new ErpNextError('bad_response', `${said}, which this client does not expect.`, details);
  }

  private badResponse(path: string, what: string): ErpNextError {
    return new ErpNextError(
      'bad_response',
      `ERPNext at ${this.host} answered ${path} with ${what}; is ERPNEXT_URL a Frappe/ERPNext site?`,
    );
  }
}

type Row = Record<string, unknown>;

function after(order: 'name' | 'modified' | 'creation', last: Row) {
  if (order === 'name') return { filters: [['name', '>', last.name]] as FrappeCondition[], orFilters: [] };
  // (order >= v) AND (order > v OR name > n)  ==  order > v OR (order = v AND name > n)
  return {
    filters: [[order, '>=', last[order]]] as FrappeCondition[],
    orFilters: [
      [order, '>', last[order]],
      ['name', '>', last.name],
    ] as FrappeCondition[],
  };
}

function dataOf(body: unknown, path: string, valid: (data: unknown) => boolean): unknown {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined;
  if (!valid(data)) {
    throw new ErpNextError(
      'bad_response',
      `ERPNext answered ${path} without the expected "data"; is ERPNEXT_URL right?`,
    );
  }
  return data;
}

const text = (value: unknown): string | null =>
  typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;

function toItem(row: Row): ErpNextItem {
  return {
    name: text(row.name)!,
    itemCode: text(row.item_code),
    itemName: text(row.item_name),
    itemGroup: text(row.item_group),
    brand: text(row.brand),
    disabled: row.disabled === 1 || row.disabled === true || row.disabled === '1',
    image: text(row.image) || null,
    modified: text(row.modified) ?? '',
  };
}

function toFile(row: Row): ErpNextFile {
  return {
    name: text(row.name)!,
    fileUrl: text(row.file_url) ?? '',
    fileName: text(row.file_name),
    isPrivate: row.is_private === 1 || row.is_private === true || row.is_private === '1',
    attachedToName: text(row.attached_to_name) ?? '',
    attachedToField: text(row.attached_to_field),
    contentHash: text(row.content_hash),
    modified: text(row.modified) ?? '',
  };
}

/** Frappe's JSON error body: exc_type, and the first of _server_messages (a JSON list of JSON objects). */
function frappeError(body: Buffer): { excType?: string; message?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const { exc_type: excType, _server_messages: serverMessages, _error_message: errorMessage } = parsed as Row;
  let message = typeof errorMessage === 'string' ? errorMessage : undefined;
  if (typeof serverMessages === 'string') {
    try {
      const first = (JSON.parse(serverMessages) as unknown[])[0];
      const inner = typeof first === 'string' ? (JSON.parse(first) as Row) : first;
      if (typeof inner === 'object' && inner !== null && typeof (inner as Row).message === 'string') {
        message = (inner as Row).message as string;
      }
    } catch {
      // A malformed message list is not worth failing over: the status and exc_type remain.
    }
  }
  return {
    excType: typeof excType === 'string' ? excType.slice(0, 100) : undefined,
    message: message?.replace(/<[^>]*>/g, '').slice(0, 300),
  };
}

function retryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function splitOnce(value: string, separator: string): [string, string | undefined] {
  const at = value.indexOf(separator);
  return at < 0 ? [value, undefined] : [value.slice(0, at), value.slice(at + 1)];
}

/** Percent-encodes a path segment that may already hold escapes (kept) or raw characters (encoded). */
function encodeSegment(segment: string): string {
  try {
    return encodeURIComponent(decodeURIComponent(segment));
  } catch {
    return encodeURIComponent(segment);
  }
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(
      `ERPNEXT_URL ${JSON.stringify(raw)} is not a URL; write the site's address, e.g. https://erp.example.com.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error('ERPNEXT_URL must start with https:// or http://.');
  if (url.username || url.password) {
    throw new Error('ERPNEXT_URL must not contain a user or password; set ERPNEXT_API_KEY and ERPNEXT_API_SECRET.');
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new Error(`ERPNEXT_URL must be the site's origin only (e.g. ${url.origin}), without a path or query.`);
  }
  return new URL(url.origin);
}
