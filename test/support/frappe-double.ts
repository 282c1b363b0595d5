// A strict in-process stand-in for an ERPNext (Frappe v15) site: no ERPNext can run on these machines. A real HTTP
// server on 127.0.0.1 holding Items, Files (public and private, with bytes) and Deleted Documents, answering the
// REST API the connector uses as Frappe's own code does. Sources followed (frappe/frappe, version-15 line):
//   frappe/app.py            application(): validate_auth first; /api/ → frappe.api.handle; /private/files/ →
//                            download_private_file; handle_exception (+ permissions.handle_does_not_exist_error:
//                            a missing document is a 403 for a user who cannot read the doctype at all)
//   frappe/auth.py           validate_auth / validate_auth_via_api_keys: "token key:secret" or "Basic base64";
//                            an unknown key or a wrong secret → 401 AuthenticationError; no header → Guest
//   frappe/api/__init__.py   an unmatched /api/ route → DoesNotExistError (404); answers are {"data": ...}
//   frappe/api/v1.py         document_list, read_doc (trailing slash optional; names may contain "/")
//   frappe/utils/response.py report_error: JSON {"exc_type": ..., "_server_messages": ..., "_error_message": ...};
//                            download_private_file: Guest or no readable File row → 403, missing bytes → 404
//   frappe/model/delete_doc.py  add_to_deleted_document; remove_all deletes the attachments with the document
//   frappe/model/rename_doc.py  the name changes, attachments follow (update_attachments); ERPNext's
//                            Item.after_rename sets item_code (and so `modified`); no Deleted Document
//   frappe/core/doctype/file/utils.py  attach_files_to_document: an Attach Image value becomes a File row
//   frappe/integrations/doctype/webhook/webhook.py  sendWebhook below
// List queries: frappe-double-query.ts. `/files/...` is served as frappe-bench's nginx serves the public folder
// (no auth, nginx's 404 page); nginx also refuses request lines over 8 KiB (414).
// Strict: a request the double does not model answers 501 and is recorded in `violations`; tests call
// assertNoViolations(). Every request is recorded (method, path, query, user, status) so a test can prove that
// nothing was fetched twice. Faults (429 with Retry-After, 5xx, connection reset, hang) are injected per request.
import crypto from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  collator,
  DEFAULT_FIELDS,
  FrappeHttpError,
  notModelled,
  runListQuery,
  type Doc,
  type DoctypeMeta,
} from './frappe-double-query.js';
import { pythonJsonDumps, type PyJson } from './frappe-double-pyjson.js';

export { pyFloat, pythonJsonDumps, type PyJson } from './frappe-double-pyjson.js';

// ERPNext's Item (a subset of its fields), Frappe's File and Deleted Document (frappe/core/doctype/*/*.json).
export const ITEM_META: DoctypeMeta = {
  name: 'Item',
  fields: {
    item_code: 'Data',
    item_name: 'Data',
    item_group: 'Link',
    brand: 'Link',
    disabled: 'Check',
    image: 'Attach Image',
    description: 'Text',
    stock_uom: 'Link',
    is_stock_item: 'Check',
    has_variants: 'Check',
    variant_of: 'Link',
    standard_rate: 'Currency',
  },
  sortField: 'modified',
  sortOrder: 'desc',
};
export const FILE_META: DoctypeMeta = {
  name: 'File',
  fields: {
    file_name: 'Data',
    file_url: 'Text',
    is_private: 'Check',
    file_size: 'Int',
    content_hash: 'Data',
    folder: 'Link',
    is_folder: 'Check',
    is_home_folder: 'Check',
    is_attachments_folder: 'Check',
    attached_to_doctype: 'Link',
    attached_to_name: 'Data',
    attached_to_field: 'Data',
    thumbnail_url: 'Text',
  },
  sortField: 'modified',
  sortOrder: 'desc',
};
export const DELETED_DOCUMENT_META: DoctypeMeta = {
  name: 'Deleted Document',
  fields: { deleted_name: 'Data', deleted_doctype: 'Data', restored: 'Check', new_name: 'Data', data: 'Text' },
  sortField: 'modified',
  sortOrder: 'desc',
};
const METAS = [ITEM_META, FILE_META, DELETED_DOCUMENT_META];

export interface ApiUser {
  user: string;
  key: string;
  secret: string;
  /** The Authorization header value Frappe expects: `token key:secret`. */
  authorization: string;
}

export interface RecordedRequest {
  method: string;
  /** Decoded path, e.g. /api/resource/Item or /private/files/a b.jpg. */
  path: string;
  query: Record<string, string>;
  /** The Frappe user the request ran as ("Guest" without credentials). */
  user: string;
  /** Whether an Authorization header was present (its value is never recorded). */
  authorization: boolean;
  status: number | 'reset' | 'hang';
  /** When it arrived (performance.now(), ms). */
  at: number;
}

export type Fault =
  { kind: 'status'; status: 429 | 500 | 502 | 503 | 504; retryAfter?: string } | { kind: 'reset' } | { kind: 'hang' };

interface QueuedFault {
  fault: Fault;
  remaining: number;
  match: (request: { method: string; path: string }) => boolean;
}

export interface ItemInput {
  item_code: string;
  item_name?: string;
  item_group?: string;
  brand?: string | null;
  disabled?: 0 | 1;
  image?: string | null;
  description?: string | null;
}

export interface FileInput {
  /** The Item (or other document) the file is attached to; omit for an unattached file. */
  attachedTo?: string;
  attachedToDoctype?: string;
  attachedToField?: string | null;
  fileName: string;
  content: Buffer;
  isPrivate?: boolean;
  owner?: string;
}

export interface WebhookRequest {
  url: string;
  /** The Webhook's data as Frappe builds it (get_webhook_data); floats as pyFloat(...). */
  data: PyJson;
  /** Webhook Secret with "Enable Security"; omit for no signature header. */
  secret?: string;
  method?: 'POST' | 'PUT' | 'DELETE';
  /** The Webhook's own headers (Webhook Header rows), e.g. {"Content-Type": "application/json"}. */
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface WebhookResult {
  status: number;
  body: string;
  /** Exactly what was sent. */
  sentBody: Buffer;
  sentHeaders: Record<string, string>;
}

const ADMINISTRATOR = 'Administrator';
// nginx: large_client_header_buffers 4 8k (frappe-bench's generated config keeps the default).
const MAX_REQUEST_LINE = 8192;
const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  pdf: 'application/pdf',
  txt: 'text/plain',
};

export class FrappeDouble {
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];
  private readonly docs = new Map<string, Map<string, Doc>>(METAS.map((meta) => [meta.name, new Map()]));
  /** File bytes by file_url (decoded, without query). */
  private readonly bytes = new Map<string, Buffer>();
  private readonly users = new Map<string, { user: string; secret: string; read: Set<string> }>();
  private readonly faults: QueuedFault[] = [];
  private readonly redirects = new Map<string, { location: string; status: number }>();
  private readonly hooks: ((request: { method: string; path: string; query: Record<string, string> }) => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private lastMicros = 0;
  private server!: http.Server;
  url = '';

  static async start(): Promise<FrappeDouble> {
    const double = new FrappeDouble();
    // Room for long request lines, so that the nginx limit below answers them (Node's default stops at 16 KiB).
    double.server = http.createServer(
      { maxHeaderSize: 65536 },
      (request, response) => void double.handle(request, response),
    );
    double.server.on('connection', (socket: Socket) => {
      double.sockets.add(socket);
      socket.once('close', () => double.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => double.server.listen(0, '127.0.0.1', resolve));
    double.url = `http://127.0.0.1:${(double.server.address() as AddressInfo).port}`;
    return double;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  assertNoViolations(): void {
    if (this.violations.length > 0) {
      throw new Error(`The Frappe double was asked for what it does not model:\n${this.violations.join('\n')}`);
    }
  }

  /** Requests whose path starts with `prefix` (e.g. "/api/resource/Item"). */
  requestsTo(prefix: string): RecordedRequest[] {
    return this.requests.filter((request) => request.path === prefix || request.path.startsWith(`${prefix}/`));
  }

  // ---- users ------------------------------------------------------------------------------------------------

  /** An API key pair for a user that may read the given doctypes (e.g. ['Item', 'File']). */
  addApiUser(user: string, read: string[]): ApiUser {
    // frappe.generate_hash(length=15), as User.generate_keys does.
    const key = crypto.randomBytes(8).toString('hex').slice(0, 15);
    const secret = crypto.randomBytes(8).toString('hex').slice(0, 15);
    this.users.set(key, { user, secret, read: new Set(read) });
    return { user, key, secret, authorization: `token ${key}:${secret}` };
  }

  // ---- catalog ----------------------------------------------------------------------------------------------

  /** Frappe's now(): `YYYY-MM-DD HH:MM:SS.ffffff`, strictly increasing within the double. */
  now(): string {
    this.lastMicros = Math.max(Date.now() * 1000, this.lastMicros + 1);
    const date = new Date(Math.floor(this.lastMicros / 1000));
    const micros = String(this.lastMicros % 1_000_000).padStart(6, '0');
    return `${date.toISOString().slice(0, 19).replace('T', ' ')}.${micros}`;
  }

  addItem(input: ItemInput): Doc {
    const name = input.item_code;
    if (!name) throw new Error('addItem: item_code is required (it is the Item name)');
    this.assertFreeName('Item', name);
    const now = this.now();
    const doc: Doc = {
      ...standardFields(name, now, 'Item'),
      item_code: name,
      item_name: input.item_name ?? name,
      item_group: input.item_group ?? 'All Item Groups',
      brand: input.brand ?? null,
      disabled: input.disabled ?? 0,
      image: input.image ?? null,
      description: input.description ?? null,
      stock_uom: 'Nos',
      is_stock_item: 1,
      has_variants: 0,
      variant_of: null,
      standard_rate: 0,
    };
    this.table('Item').set(name, doc);
    this.attachImageField(doc);
    return doc;
  }

  /** Many items with codes `${prefix}0001`...; returns their names. */
  addItems(count: number, prefix = 'ITEM-', extra: Partial<ItemInput> = {}): string[] {
    return Array.from({ length: count }, (_, index) => {
      const code = `${prefix}${String(index + 1).padStart(4, '0')}`;
      return this.addItem({ ...extra, item_code: code }).name;
    });
  }

  /** doc.save(): the changed fields, and a new `modified`. */
  updateItem(name: string, changes: Partial<Omit<ItemInput, 'item_code'>>): Doc {
    const doc = this.mustGet('Item', name);
    Object.assign(doc, changes, { modified: this.now(), modified_by: ADMINISTRATOR });
    this.attachImageField(doc);
    return doc;
  }

  /** Sets `modified` (and nothing else), e.g. to give several rows the same timestamp. */
  setModified(doctype: string, name: string, modified: string): void {
    this.mustGet(doctype, name).modified = modified;
  }

  /** frappe.rename_doc("Item", old, new) with ERPNext's Item.before_rename/after_rename. */
  renameItem(oldName: string, newName: string): Doc {
    const doc = this.mustGet('Item', oldName);
    this.assertFreeName('Item', newName);
    this.table('Item').delete(oldName);
    // before_rename: an item_name equal to the old name follows the rename.
    if (doc.item_name === oldName) doc.item_name = newName;
    doc.name = newName;
    // after_rename: frappe.db.set_value("Item", new_name, "item_code", new_name) updates `modified` too.
    Object.assign(doc, { item_code: newName, modified: this.now() });
    this.table('Item').set(newName, doc);
    // rename_doc.update_attachments: File.attached_to_name follows, without touching the File's `modified`.
    for (const file of this.table('File').values()) {
      if (file.attached_to_doctype === 'Item' && file.attached_to_name === oldName) file.attached_to_name = newName;
    }
    return doc;
  }

  /** frappe.delete_doc("Item", name): a Deleted Document, and its attachments deleted with it. */
  deleteItem(name: string): void {
    const doc = this.mustGet('Item', name);
    for (const file of [...this.table('File').values()]) {
      if (file.attached_to_doctype === 'Item' && file.attached_to_name === name) this.deleteFile(file.name);
    }
    this.table('Item').delete(name);
    this.addDeletedDocument(doc);
  }

  /** A File row (and its bytes), as an upload attached to a document creates it. */
  addFile(input: FileInput): Doc {
    const folder = input.isPrivate ? '/private/files/' : '/files/';
    let fileName = input.fileName;
    // file/utils.py generate_file_name: a taken name gets a random suffix before the extension.
    if (this.bytes.has(`${folder}${fileName}`)) {
      const dot = fileName.lastIndexOf('.');
      const suffix = crypto.randomBytes(3).toString('hex');
      fileName = dot > 0 ? `${fileName.slice(0, dot)}${suffix}${fileName.slice(dot)}` : `${fileName}${suffix}`;
    }
    const fileUrl = `${folder}${fileName}`;
    this.bytes.set(fileUrl, input.content);
    return this.addFileRow({
      fileName,
      fileUrl,
      isPrivate: Boolean(input.isPrivate),
      size: input.content.length,
      hash: crypto.createHash('md5').update(input.content).digest('hex'),
      attachedTo: input.attachedTo,
      attachedToDoctype: input.attachedToDoctype,
      attachedToField: input.attachedToField ?? null,
      owner: input.owner,
    });
  }

  /** frappe.delete_doc("File", name): a Deleted Document; the bytes go when no other row points at them. */
  deleteFile(name: string): void {
    const file = this.mustGet('File', name);
    this.table('File').delete(name);
    this.addDeletedDocument(file);
    const url = String(file.file_url);
    if (![...this.table('File').values()].some((other) => other.file_url === url)) this.bytes.delete(url);
  }

  /** Removes the bytes behind a File row but keeps the row (a broken attachment). */
  removeFileBytes(fileUrl: string): void {
    this.bytes.delete(fileUrl);
  }

  /** Answers a GET of `path` with a redirect (e.g. to object storage) instead of the file. */
  redirect(path: string, location: string, status = 302): void {
    this.redirects.set(path, { location, status });
  }

  items(): Doc[] {
    return [...this.table('Item').values()];
  }

  files(): Doc[] {
    return [...this.table('File').values()];
  }

  deletedDocuments(): Doc[] {
    return [...this.table('Deleted Document').values()];
  }

  // ---- faults and hooks -------------------------------------------------------------------------------------

  /** The next `times` requests matching `match` (default: every request) get `fault` instead of an answer. */
  injectFault(fault: Fault, options: { times?: number; path?: string | RegExp } = {}): void {
    const pattern = options.path;
    this.faults.push({
      fault,
      remaining: options.times ?? 1,
      match: ({ path }) =>
        pattern === undefined ? true : typeof pattern === 'string' ? path.startsWith(pattern) : pattern.test(path),
    });
  }

  /** Runs before each request is answered (after faults are applied), e.g. to change the catalog mid-run. */
  beforeRequest(hook: (request: { method: string; path: string; query: Record<string, string> }) => void): void {
    this.hooks.push(hook);
  }

  // ---- webhook ----------------------------------------------------------------------------------------------

  /**
   * Sends a webhook exactly as frappe's enqueue_webhook does with python-requests: body json.dumps(data),
   * X-Frappe-Webhook-Signature = base64(HMAC-SHA256(secret, json.dumps(data))) when a secret is set, the
   * Webhook's own headers, and no Content-Type unless those headers add one.
   */
  async sendWebhook(request: WebhookRequest): Promise<WebhookResult> {
    const body = Buffer.from(pythonJsonDumps(request.data), 'utf8');
    const headers: Record<string, string> = {
      // requests.utils.default_headers()
      'User-Agent': 'python-requests/2.32.3',
      'Accept-Encoding': 'gzip, deflate',
      Accept: '*/*',
      Connection: 'keep-alive',
    };
    if (request.secret !== undefined) {
      headers['X-Frappe-Webhook-Signature'] = crypto
        .createHmac('sha256', Buffer.from(request.secret, 'utf8'))
        .update(body)
        .digest('base64');
    }
    for (const [key, value] of Object.entries(request.headers ?? {})) if (key && value) headers[key] = value;
    headers['Content-Length'] = String(body.length);
    const target = new URL(request.url);
    return new Promise<WebhookResult>((resolve, reject) => {
      const outgoing = http.request(
        target,
        { method: request.method ?? 'POST', headers, timeout: request.timeoutMs ?? 5000, agent: false },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              sentBody: body,
              sentHeaders: headers,
            }),
          );
          response.on('error', reject);
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error(`webhook to ${target.host} timed out`)));
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  // ---- HTTP -------------------------------------------------------------------------------------------------

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const rawUrl = request.url ?? '/';
    const url = new URL(rawUrl, 'http://double.invalid');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const query = Object.fromEntries([...url.searchParams.keys()].map((key) => [key, url.searchParams.get(key)!]));
    const method = request.method ?? 'GET';
    const entry: RecordedRequest = {
      method,
      path,
      query,
      user: 'Guest',
      authorization: request.headers.authorization !== undefined,
      status: 0,
      at: performance.now(),
    };
    this.requests.push(entry);

    const queued = this.faults.find((candidate) => candidate.remaining > 0 && candidate.match({ method, path }));
    if (queued) {
      queued.remaining--;
      return this.applyFault(queued.fault, entry, response);
    }
    for (const hook of this.hooks) hook({ method, path, query });

    const send = (status: number, body: string | Buffer, headers: Record<string, string>) => {
      entry.status = status;
      response.writeHead(status, { 'cache-control': 'no-store,no-cache,must-revalidate,max-age=0', ...headers });
      response.end(body);
    };
    if (`${method} ${rawUrl} HTTP/1.1`.length > MAX_REQUEST_LINE) {
      return send(414, nginxPage(414, 'Request-URI Too Large'), { 'content-type': 'text/html' });
    }
    const redirect = this.redirects.get(path);
    if (redirect && method === 'GET') return send(redirect.status, '', { location: redirect.location });
    if (path.startsWith('/files/')) return this.servePublicFile(path, send);

    const isApi = path.startsWith('/api/');
    try {
      entry.user = this.authenticate(request.headers.authorization);
      if (path.startsWith('/private/files/')) return this.servePrivateFile(path, query.fid, entry.user, send);
      if (!isApi) throw new FrappeHttpError(404, 'PageDoesNotExistError', 'Page not found', false);
      const data = this.api(method, path, query, entry.user);
      send(200, JSON.stringify(data), { 'content-type': 'application/json' });
    } catch (error) {
      if (!(error instanceof FrappeHttpError)) throw error;
      if (error.status === 501) this.violations.push(`${method} ${rawUrl}: ${error.message}`);
      // handle_exception: JSON on /api/ (unless the client asks for text), an HTML page elsewhere.
      const accept = request.headers.accept ?? '';
      if ((isApi && !accept.startsWith('text')) || accept.includes('application/json')) {
        send(error.status, JSON.stringify(errorBody(error)), { 'content-type': 'application/json' });
      } else {
        send(error.status, htmlPage(error.status), { 'content-type': 'text/html; charset=utf-8' });
      }
    }
  }

  private applyFault(fault: Fault, entry: RecordedRequest, response: ServerResponse): void {
    if (fault.kind === 'reset') {
      entry.status = 'reset';
      response.socket?.destroy();
      return;
    }
    if (fault.kind === 'hang') {
      entry.status = 'hang'; // no answer; close() or the client's timeout ends it
      return;
    }
    entry.status = fault.status;
    const headers: Record<string, string> = {};
    if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
    if (fault.status === 429) {
      // frappe/rate_limiter.py respond(): Response(_("Too Many Requests"), status=429)
      response.writeHead(429, { 'content-type': 'text/plain; charset=utf-8', ...headers });
      response.end('Too Many Requests');
    } else if (fault.status === 500) {
      response.writeHead(500, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify({ exc_type: 'InternalError' }));
    } else {
      // 502/503/504 come from nginx in front of gunicorn.
      const reason = { 502: 'Bad Gateway', 503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out' };
      response.writeHead(fault.status, { 'content-type': 'text/html', ...headers });
      response.end(nginxPage(fault.status, reason[fault.status]));
    }
  }

  /** auth.validate_auth: the user of the request, or a 401 for credentials that do not check out. */
  private authenticate(header: string | undefined): string {
    if (header === undefined) return 'Guest';
    const parts = header.split(' ');
    if (parts.length !== 2) return 'Guest'; // validate_auth only looks at two-part headers
    const [type, token] = parts;
    let pair: string[] | undefined;
    if (type.toLowerCase() === 'token') pair = token.split(':');
    else if (type.toLowerCase() === 'basic') pair = Buffer.from(token, 'base64').toString('utf8').split(':');
    if (pair?.length === 2) {
      const found = this.users.get(pair[0]);
      // validate_api_key_secret: an unknown key and a wrong secret are both a bare AuthenticationError.
      if (found && found.secret === pair[1]) return found.user;
    }
    throw new FrappeHttpError(401, 'AuthenticationError', '', false);
  }

  private canRead(user: string, doctype: string): boolean {
    if (user === ADMINISTRATOR) return true;
    return [...this.users.values()].some((entry) => entry.user === user && entry.read.has(doctype));
  }

  private api(method: string, path: string, query: Record<string, string>, user: string): unknown {
    if (method !== 'GET') throw notModelled(`${method} requests (the connector only reads)`);
    const route = /^\/api(?:\/v1)?\/(resource|method)\/([^/]+)(?:\/(.+?))?\/?$/.exec(path);
    // frappe.api.handle wraps an unmatched route in DoesNotExistError.
    if (!route) throw new FrappeHttpError(404, 'DoesNotExistError', '', false);
    const [, kind, first, rest] = route;
    if (kind === 'method') {
      if (first !== 'frappe.auth.get_logged_user' || rest) throw notModelled(`the method ${first}`);
      // @frappe.whitelist() without allow_guest: a Guest is refused.
      if (user === 'Guest') throw new FrappeHttpError(403, 'PermissionError', 'Not permitted');
      return { message: user };
    }
    const meta = METAS.find((candidate) => candidate.name === first);
    if (!meta) {
      // get_meta raises DoesNotExistError("DocType ... not found"); handle_does_not_exist_error turns it into a
      // PermissionError for a user who cannot read DocType (API users normally cannot).
      if (this.canRead(user, 'DocType'))
        throw new FrappeHttpError(404, 'DoesNotExistError', `DocType ${first} not found`);
      throw new FrappeHttpError(403, 'PermissionError', 'No permission for DocType', true);
    }
    if (rest === undefined) {
      return {
        data: runListQuery(
          { meta, docs: this.table(meta.name).values(), canRead: this.canRead(user, meta.name) },
          query,
        ),
      };
    }
    return { data: this.readDoc(meta, rest, user) };
  }

  /** v1.read_doc: frappe.get_doc + check_permission("read"); the answer omits null fields (as_dict(no_nulls)). */
  private readDoc(meta: DoctypeMeta, name: string, user: string): Record<string, unknown> {
    const doc = this.table(meta.name).get(name);
    const canRead = this.canRead(user, meta.name);
    if (!doc) {
      if (!canRead) {
        throw new FrappeHttpError(403, 'PermissionError', `No permission for ${meta.name}`, true);
      }
      throw new FrappeHttpError(404, 'DoesNotExistError', `${meta.name} ${name} not found`);
    }
    if (!canRead) {
      throw new FrappeHttpError(
        403,
        'PermissionError',
        '',
        false,
        `Insufficient Permission for ${meta.name} (<strong>read</strong>)`,
      );
    }
    return Object.fromEntries(Object.entries({ ...doc, doctype: meta.name }).filter(([, value]) => value !== null));
  }

  private servePublicFile(
    path: string,
    send: (status: number, body: string | Buffer, h: Record<string, string>) => void,
  ) {
    const content = this.bytes.get(path);
    if (!content) return send(404, nginxPage(404, 'Not Found'), { 'content-type': 'text/html' });
    send(200, content, { 'content-type': contentType(path) });
  }

  /** response.download_private_file + file/utils.find_file_by_url + File.is_downloadable. */
  private servePrivateFile(
    path: string,
    fid: string | undefined,
    user: string,
    send: (status: number, body: string | Buffer, h: Record<string, string>) => void,
  ) {
    const forbidden = () =>
      new FrappeHttpError(403, 'Forbidden', "You don't have permission to access this file", false);
    if (user === 'Guest') throw forbidden();
    const rows = [...this.table('File').values()].filter(
      (file) => file.file_url === path && (fid === undefined || file.name === fid),
    );
    const downloadable = rows.find(
      (file) =>
        user === ADMINISTRATOR ||
        file.owner === user ||
        (typeof file.attached_to_doctype === 'string' &&
          this.table(file.attached_to_doctype).has(String(file.attached_to_name)) &&
          this.canRead(user, file.attached_to_doctype)),
    );
    if (!downloadable) throw forbidden();
    const content = this.bytes.get(path);
    if (!content) throw new FrappeHttpError(404, 'NotFound', 'Not Found', false);
    send(200, content, { 'content-type': contentType(path) });
  }

  // ---- state helpers ----------------------------------------------------------------------------------------

  private table(doctype: string): Map<string, Doc> {
    const table = this.docs.get(doctype);
    if (!table) throw new Error(`The Frappe double has no doctype ${doctype}`);
    return table;
  }

  private mustGet(doctype: string, name: string): Doc {
    const doc = this.table(doctype).get(name);
    if (!doc) throw new Error(`${doctype} ${name} not found`);
    return doc;
  }

  /** Names are a primary key under MariaDB's case-insensitive collation. */
  private assertFreeName(doctype: string, name: string): void {
    for (const existing of this.table(doctype).keys()) {
      if (collator.compare(existing, name) === 0) throw new Error(`${doctype} ${name} already exists (as ${existing})`);
    }
  }

  private addFileRow(file: {
    fileName: string;
    fileUrl: string;
    isPrivate: boolean;
    size: number;
    hash: string | null;
    attachedTo?: string;
    attachedToDoctype?: string;
    attachedToField: string | null;
    owner?: string;
  }): Doc {
    const name = crypto.randomBytes(5).toString('hex'); // frappe.generate_hash(length=10)
    const doc: Doc = {
      ...standardFields(name, this.now(), 'File', file.owner),
      file_name: file.fileName,
      file_url: file.fileUrl,
      is_private: file.isPrivate ? 1 : 0,
      file_size: file.size,
      content_hash: file.hash,
      folder: file.attachedTo ? 'Home/Attachments' : 'Home',
      is_folder: 0,
      is_home_folder: 0,
      is_attachments_folder: 0,
      attached_to_doctype: file.attachedTo ? (file.attachedToDoctype ?? 'Item') : null,
      attached_to_name: file.attachedTo ?? null,
      attached_to_field: file.attachedToField,
      thumbnail_url: null,
    };
    this.table('File').set(name, doc);
    return doc;
  }

  /** file/utils.attach_files_to_document (on_update): an Attach Image value gets its File row. */
  private attachImageField(item: Doc): void {
    const value = typeof item.image === 'string' ? item.image.split('?', 1)[0] : '';
    if (!value.startsWith('/files') && !value.startsWith('/private/files')) return;
    const files = [...this.table('File').values()];
    const attached = files.some(
      (file) =>
        file.file_url === value &&
        file.attached_to_name === item.name &&
        file.attached_to_doctype === 'Item' &&
        file.attached_to_field === 'image',
    );
    if (attached) return;
    const unattached = files.find((file) => file.file_url === value && !file.attached_to_doctype);
    if (unattached) {
      Object.assign(unattached, {
        attached_to_doctype: 'Item',
        attached_to_name: item.name,
        attached_to_field: 'image',
        is_private: value.startsWith('/private') ? 1 : 0,
      });
      return;
    }
    const content = this.bytes.get(value);
    this.addFileRow({
      fileName: value.slice(value.lastIndexOf('/') + 1),
      fileUrl: value,
      isPrivate: value.startsWith('/private'),
      size: content?.length ?? 0,
      hash: content ? crypto.createHash('md5').update(content).digest('hex') : null,
      attachedTo: item.name,
      attachedToField: 'image',
    });
  }

  private addDeletedDocument(doc: Doc): void {
    const name = crypto.randomBytes(5).toString('hex');
    const now = this.now();
    this.table('Deleted Document').set(name, {
      ...standardFields(name, now, 'Deleted Document'),
      deleted_name: doc.name,
      deleted_doctype: String(doc.doctype),
      restored: 0,
      new_name: null,
      data: JSON.stringify(doc, null, 1),
    });
  }
}

function standardFields(name: string, now: string, doctype: string, owner = ADMINISTRATOR): Doc {
  const doc: Doc = { name, creation: now, modified: now };
  for (const field of DEFAULT_FIELDS) if (!(field in doc)) doc[field] = null;
  return Object.assign(doc, { doctype, owner, modified_by: owner, docstatus: 0, idx: 0 });
}

/** report_error(): exc_type always; the frappe.throw message as _server_messages; flags.error_message. */
function errorBody(error: FrappeHttpError): Record<string, unknown> {
  const body: Record<string, unknown> = { exc_type: error.excType };
  if (error.thrown && error.message) {
    const message = {
      message: error.message,
      title: 'Message',
      indicator: 'red',
      raise_exception: 1,
      __frappe_exc_id: crypto.randomBytes(5).toString('hex'),
    };
    body._server_messages = JSON.stringify([JSON.stringify(message)]);
  }
  if (error.errorMessage) body._error_message = error.errorMessage;
  return body;
}

function htmlPage(status: number): string {
  const titles: Record<number, string> = { 401: 'Session Expired', 403: 'Not Permitted', 404: 'Not Found' };
  return `<!DOCTYPE html><html><head><title>${titles[status] ?? 'Server Error'}</title></head><body></body></html>`;
}

function nginxPage(status: number, reason: string): string {
  const title = `${status} ${reason}`;
  const lines = ['<html>', `<head><title>${title}</title></head>`, '<body>', `<center><h1>${title}</h1></center>`];
  return [...lines, '<hr><center>nginx</center>', '</body>', '</html>', ''].join('\r\n');
}

function contentType(path: string): string {
  const extension = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase() ?? '';
  return CONTENT_TYPES[extension] ?? 'application/octet-stream';
}
