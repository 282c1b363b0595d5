// The only reader of process.env. Every variable is declared once in VARIABLES (name, default, parser,
// description); the README's table is checked against this list by a test.
import path from 'node:path';
import { parseFrappeFilters, type FrappeCondition } from './erpnext/filters.js';
import { parseAllowList } from './images/address-policy.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Parser<T> = (raw: string, name: string) => T;

interface Variable<T> {
  env: string;
  /** Default as a string, parsed like a real value; undefined = optional with no value. */
  default?: string;
  parse: Parser<T>;
  doc: string;
}

const text: Parser<string> = (raw) => raw;

const integer =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an integer between ${min} and ${max}.`);
    }
    return value;
  };

const fraction: Parser<number> = (raw, name) => {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a number from 0 to 1.`);
  }
  return value;
};

const httpUrl: Parser<string> = (raw, name) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a URL; use a full URL such as http://qdrant:6333.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name} must start with http:// or https:// (got ${url.protocol}).`);
  }
  return raw.replace(/\/+$/, '');
};

const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);

/** Checked like the URL fetcher will read it, so a typo stops the service at start. */
const allowList: Parser<string[]> = (raw, name) => {
  const entries = list(raw, name);
  try {
    parseAllowList(entries);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return entries;
};

const headerObject: Parser<Record<string, string>> = (raw, name) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(
      `${name} must be a JSON object of header names to values, e.g. {"Authorization":"token KEY:SECRET"}.`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${name} must be a JSON object of header names to string values.`);
  }
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) {
      throw new ConfigError(`${name}: header ${JSON.stringify(key)} needs a valid name and a string value.`);
    }
    headers[key] = value;
  }
  return headers;
};

/** Origins as browsers send them: scheme://host[:port], no path. */
const originList: Parser<string[]> = (raw, name) =>
  list(raw, name).map((entry) => {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new ConfigError(`${name}: ${JSON.stringify(entry)} is not an origin such as https://erp.example.com.`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== entry.replace(/\/$/, '')) {
      throw new ConfigError(`${name}: ${JSON.stringify(entry)} is not an origin such as https://erp.example.com.`);
    }
    return url.origin;
  });

const logLevel: Parser<string> = (raw, name) => {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(raw))
    throw new ConfigError(`${name} must be one of ${levels.join(', ')} (got ${JSON.stringify(raw)}).`);
  return raw;
};

const collectionName: Parser<string> = (raw, name) => {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(raw)) {
    throw new ConfigError(
      `${name} must be 1-64 characters of letters, digits, '_' or '-' (got ${JSON.stringify(raw)}).`,
    );
  }
  return raw;
};

const awsRegion: Parser<string> = (raw, name) => {
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(raw))
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an AWS region such as eu-west-1.`);
  return raw;
};

const volumeId: Parser<string> = (raw, name) => {
  if (!/^vol-[0-9a-f]{8,17}$/.test(raw))
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an EBS volume id such as vol-0123456789abcdef0.`);
  return raw;
};

/** ERPNEXT_URL: a site's origin only (the connector adds the paths). */
const siteOrigin: Parser<string> = (raw, name) => {
  const url = new URL(httpUrl(raw, name));
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new ConfigError(`${name} must be the site's origin only, such as ${url.origin} (no path, query or user).`);
  }
  return url.origin;
};

const frappeFilters: Parser<FrappeCondition[]> = (raw, name) => {
  try {
    return parseFrappeFilters(raw, name);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
};

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };
/** 15m, 1h, 30s or 0 (off), as the CDK setting erpnextSyncInterval; in milliseconds. */
const interval: Parser<number> = (raw, name) => {
  const match = /^(?:0|([1-9]\d{0,5})([smh]))$/.exec(raw.trim());
  if (!match)
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an interval such as 15m, 1h or 30s (0 = off).`);
  return match[1] ? Number(match[1]) * UNIT_MS[match[2]] : 0;
};

const MiB = 1024 * 1024;

export const VARIABLES = {
  port: { env: 'PORT', default: '8020', parse: integer(0, 65535), doc: 'TCP port the API listens on.' },
  host: {
    env: 'HOST',
    parse: text,
    doc:
      'Address the API binds to. Unset: 0.0.0.0 when a key is set, 127.0.0.1 (this machine only) when none is, ' +
      'since the API is then open to anyone who can reach it.',
  },
  logLevel: {
    env: 'LOG_LEVEL',
    default: 'info',
    parse: logLevel,
    doc: 'Log level (fatal, error, warn, info, debug, trace, silent).',
  },
  apiKey: {
    env: 'IMAGE_SEARCH_API_KEY',
    parse: text,
    doc:
      'Full-access key: every route that needs a key accepts it in header Image-Search-Api-Key. Unset (and no ' +
      'read key): no authentication, and the API binds to 127.0.0.1 unless HOST is set.',
  },
  readKey: {
    env: 'IMAGE_SEARCH_READ_KEY',
    parse: text,
    doc:
      'Read-only key for search clients (a browser button in ERPNext, the staff page): search, embed, reading ' +
      'items and images. A write route answers 403 forbidden to it.',
  },
  corsOrigins: {
    env: 'CORS_ORIGINS',
    default: '',
    parse: originList,
    doc: 'Comma-separated origins allowed to call the API from a browser (CORS), e.g. https://erp.example.com.',
  },
  requestTimeoutMs: {
    env: 'REQUEST_TIMEOUT_MS',
    default: '120000',
    parse: integer(1000, 3_600_000),
    doc: 'Time allowed to receive a whole request, body included; slower clients are disconnected (408).',
  },
  headersTimeoutMs: {
    env: 'HEADERS_TIMEOUT_MS',
    default: '10000',
    parse: integer(500, 600_000),
    doc: "Time allowed to receive a request's headers.",
  },
  uploadBudgetBytes: {
    env: 'UPLOAD_BUDGET_BYTES',
    default: String(160 * 1024 * 1024),
    parse: integer(1024 * 1024, 64 * 1024 * 1024 * 1024),
    doc:
      'Request bodies held in memory at once, all requests together; a request that would exceed it gets ' +
      '503 busy with Retry-After before its body is read. Must be at least MAX_IMAGE_BYTES.',
  },
  shutdownTimeoutMs: {
    env: 'SHUTDOWN_TIMEOUT_MS',
    default: '10000',
    parse: integer(100, 600_000),
    doc: 'On SIGTERM/SIGINT, time given to requests in progress before the process exits anyway.',
  },
  modelPath: {
    env: 'MODEL_PATH',
    default: 'models/efficientnet_b0.onnx',
    parse: text,
    doc: 'The ONNX model; its sidecar NAME.json must sit beside it.',
  },
  dataDir: {
    env: 'DATA_DIR',
    default: './data',
    parse: text,
    doc: 'Directory of the embedded database (used when QDRANT_URL is unset).',
  },
  imageStorageDir: {
    env: 'IMAGE_STORAGE_DIR',
    parse: text,
    doc: 'Where original images are kept. Default: DATA_DIR/images.',
  },
  qdrantUrl: {
    env: 'QDRANT_URL',
    parse: httpUrl,
    doc: 'Full URL of Qdrant (e.g. http://qdrant:6333). Unset: the embedded store is used.',
  },
  qdrantApiKey: { env: 'QDRANT_API_KEY', parse: text, doc: 'API key sent to Qdrant, if it needs one.' },
  collection: {
    env: 'QDRANT_COLLECTION',
    default: 'items',
    parse: collectionName,
    doc:
      'Name (an alias after the first migration) of the collection the API reads and writes; also used by ' +
      'the embedded store.',
  },
  maxImageBytes: {
    env: 'MAX_IMAGE_BYTES',
    default: String(20 * MiB),
    parse: integer(1024, 512 * MiB),
    doc: 'Largest accepted image, uploaded or fetched, in bytes (413 above).',
  },
  maxImagePixels: {
    env: 'MAX_IMAGE_PIXELS',
    default: '100000000',
    parse: integer(1, 1_000_000_000),
    doc:
      'Largest decoded image in pixels (width × height); larger images are refused before decoding ' +
      '(decompression bombs).',
  },
  minConfidence: {
    env: 'MIN_CONFIDENCE',
    default: '0',
    parse: fraction,
    doc: 'Search rows below this confidence (0-1) are dropped unless a request sets min_confidence.',
  },
  searchZoom: {
    env: 'SEARCH_ZOOM',
    default: '0.8',
    parse: (raw, name) => {
      const value = fraction(raw, name);
      if (value < 0.3) throw new ConfigError(`${name}=${raw}: keep at least 0.3 of each side (1 = off).`);
      return value;
    },
    doc:
      'Searches also embed the central part of the photo (this fraction of each side, where the product usually ' +
      'is) and average both views: a second inference per search, run beside the first. 1 = the whole photo only.',
  },
  maxTopK: { env: 'MAX_TOP_K', default: '50', parse: integer(1, 1000), doc: 'Upper bound for top_k in /search.' },
  embedConcurrency: {
    env: 'EMBED_CONCURRENCY',
    default: '2',
    parse: integer(1, 64),
    doc: 'Images decoded and embedded at the same time (one per vCPU is a good start).',
  },
  embedQueueMax: {
    env: 'EMBED_QUEUE_MAX',
    default: '32',
    parse: integer(0, 10_000),
    doc: 'Images allowed to wait for an embedding slot; beyond this requests get 503 busy with Retry-After.',
  },
  onnxThreads: {
    env: 'ONNX_INTRA_OP_THREADS',
    default: '1',
    parse: integer(1, 64),
    doc: 'onnxruntime intra-op threads per inference.',
  },
  urlAllow: {
    env: 'IMAGE_URL_ALLOW',
    default: '',
    parse: allowList,
    doc:
      'Comma-separated hostnames and CIDRs that image_url may reach even though they are private (e.g. ' +
      'erp.internal,10.0.5.0/24). Metadata addresses stay refused.',
  },
  urlHeaders: {
    env: 'IMAGE_URL_HEADERS',
    default: '{}',
    parse: headerObject,
    doc:
      'JSON object of extra headers sent when fetching image_url, e.g. {"Authorization":"token KEY:SECRET"} ' +
      'for ERPNext private files.',
  },
  urlTimeoutMs: {
    env: 'IMAGE_URL_TIMEOUT_MS',
    default: '15000',
    parse: integer(100, 300_000),
    doc: 'Total time allowed to fetch an image_url, redirects included.',
  },
  urlConnectTimeoutMs: {
    env: 'IMAGE_URL_CONNECT_TIMEOUT_MS',
    default: '5000',
    parse: integer(50, 60_000),
    doc: 'Time allowed to open each connection for image_url.',
  },
  urlMaxRedirects: {
    env: 'IMAGE_URL_MAX_REDIRECTS',
    default: '3',
    parse: integer(0, 10),
    doc: 'Redirects followed for image_url; each hop is checked again.',
  },
  backupDir: {
    env: 'BACKUP_DIR',
    parse: text,
    doc:
      'Where `ops backup` writes its backups (one directory per run) and `ops restore` reads them. Default: ' +
      'DATA_DIR/backups.',
  },
  backupKeep: {
    env: 'BACKUP_KEEP',
    default: '7',
    parse: integer(1, 1000),
    doc: 'Backups kept by `ops backup` (newest first); older ones are deleted, locally and in Qdrant.',
  },
  awsRegion: {
    env: 'AWS_REGION',
    parse: awsRegion,
    doc: 'AWS region for `ops ebs-snapshot`. Unset: the region of the EC2 instance (instance metadata).',
  },
  dataVolumeId: {
    env: 'DATA_VOLUME_ID',
    parse: volumeId,
    doc:
      'EBS volume that `ops ebs-snapshot` snapshots. Unset: the volume tagged erp-image-search:data-volume ' +
      '(attached to this instance).',
  },
  ebsSnapshotKeep: {
    env: 'EBS_SNAPSHOT_KEEP',
    default: '3',
    parse: integer(1, 1000),
    doc:
      'Snapshots made by `ops ebs-snapshot` kept per volume; older ones it made are deleted (daily DLM ' +
      'snapshots are not touched).',
  },
  erpnextUrl: {
    env: 'ERPNEXT_URL',
    parse: siteOrigin,
    doc:
      'ERPNext site (origin), e.g. https://erp.example.com: the staff page links items to it, and with ' +
      'ERPNEXT_API_KEY and ERPNEXT_API_SECRET its Items and their images are synced. Its host may be private; ' +
      'the API key goes to this origin only.',
  },
  erpnextApiKey: {
    env: 'ERPNEXT_API_KEY',
    parse: text,
    doc: 'API key of an ERPNext user who may read Item and File (sent as `Authorization: token KEY:SECRET`).',
  },
  erpnextApiSecret: { env: 'ERPNEXT_API_SECRET', parse: text, doc: "That user's API secret." },
  erpnextItemFilters: {
    env: 'ERPNEXT_ITEM_FILTERS',
    parse: frappeFilters,
    doc:
      'Which Items are synced, as Frappe filters in JSON, e.g. [["item_group","in",["Products","Spares"]]]. ' +
      'Unset: all Items. An Item that stops matching is removed here.',
  },
  erpnextWebhookSecret: {
    env: 'ERPNEXT_WEBHOOK_SECRET',
    parse: text,
    doc:
      "The Webhook Secret of ERPNext's Webhook to POST /webhooks/erpnext (at least 16 characters); unset: no " +
      'webhook route.',
  },
  erpnextSyncInterval: {
    env: 'ERPNEXT_SYNC_INTERVAL',
    default: '15m',
    parse: interval,
    doc: 'How often the API reconciles the catalog with ERPNext (e.g. 15m, 1h, 30s; 0 = only webhooks and `ops sync`).',
  },
} satisfies Record<string, Variable<unknown>>;

type Vars = typeof VARIABLES;
type ValueOf<K extends keyof Vars> = Vars[K] extends Variable<infer T> ? T : never;
type HasDefault<K extends keyof Vars> = Vars[K] extends { default: string } ? K : never;

export type Config = {
  [K in keyof Vars as HasDefault<K>]: ValueOf<K>;
} & {
  [K in keyof Vars as Exclude<K, HasDefault<K>>]?: ValueOf<K>;
} & {
  /** Resolved: IMAGE_STORAGE_DIR or DATA_DIR/images. */
  imageStorageDir: string;
  /** Resolved: BACKUP_DIR or DATA_DIR/backups. */
  backupDir: string;
  /** Resolved: HOST, or 0.0.0.0 with a key and 127.0.0.1 without. */
  host: string;
};

/**
 * The ERPNext settings belong together: ERPNEXT_URL alone only links the staff page to ERPNext; the sync needs it
 * with the key pair, and the webhook and the filters need the sync.
 */
function erpnextProblems(values: Record<string, unknown>): string[] {
  const { erpnextUrl, erpnextApiKey: key, erpnextApiSecret: secret, erpnextWebhookSecret: webhook } = values;
  const problems: string[] = [];
  const keys = 'ERPNEXT_API_KEY and ERPNEXT_API_SECRET (ERPNext: User → Settings → API Access → Generate Keys)';
  if (erpnextUrl && !key !== !secret) problems.push(`The ERPNext sync needs both ${keys}.`);
  if (erpnextUrl && !key && !secret && (webhook || values.erpnextItemFilters)) {
    problems.push(`ERPNEXT_WEBHOOK_SECRET and ERPNEXT_ITEM_FILTERS belong to the ERPNext sync: set ${keys} too.`);
  }
  if (!erpnextUrl && (key || secret || webhook || values.erpnextItemFilters)) {
    problems.push(
      'ERPNEXT_API_KEY, ERPNEXT_API_SECRET, ERPNEXT_WEBHOOK_SECRET and ERPNEXT_ITEM_FILTERS need ERPNEXT_URL.',
    );
  }
  if ((typeof key === 'string' && /[:\s]/.test(key)) || (typeof secret === 'string' && /\s/.test(secret))) {
    problems.push('ERPNEXT_API_KEY must not contain a colon or spaces, nor ERPNEXT_API_SECRET spaces.');
  }
  if (typeof webhook === 'string' && webhook.length < 16) {
    problems.push('ERPNEXT_WEBHOOK_SECRET must have at least 16 characters; generate one with openssl rand -hex 32.');
  }
  return problems;
}

/** Reads the environment once. Collects every problem and throws them together, one line each. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, variable] of Object.entries(VARIABLES) as [string, Variable<unknown>][]) {
    const raw = env[variable.env];
    const source = raw === undefined || raw === '' ? variable.default : raw;
    if (source === undefined) continue;
    try {
      values[key] = variable.parse(source, variable.env);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  const { uploadBudgetBytes, maxImageBytes } = values;
  if (typeof uploadBudgetBytes === 'number' && typeof maxImageBytes === 'number' && uploadBudgetBytes < maxImageBytes) {
    problems.push(`UPLOAD_BUDGET_BYTES (${uploadBudgetBytes}) must be at least MAX_IMAGE_BYTES (${maxImageBytes}).`);
  }
  problems.push(...erpnextProblems(values));
  if (problems.length > 0) {
    throw new ConfigError(`Invalid configuration:\n- ${problems.join('\n- ')}`);
  }
  values.imageStorageDir ??= path.join(values.dataDir as string, 'images');
  values.backupDir ??= path.join(values.dataDir as string, 'backups');
  values.host ??= values.apiKey || values.readKey ? '0.0.0.0' : '127.0.0.1';

  return values as Config;
}
