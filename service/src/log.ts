// The one logger: a pino root built once by the process entry, with child loggers per component
// (http, catalog, store, embedding, ops, erpnext) handed down. Secrets never reach a log line at any
// level: known header paths are redacted, and as a last line of defence every configured secret value
// is replaced in the serialized line itself (a library that logs a whole options object at trace level,
// headers included, cannot leak a key).
import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** What components need from a logger: a pino child satisfies it, and tests can pass a recorder. */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
}

/** The child logger of a component (a plain Log, e.g. a test recorder, is used as it is). */
export function componentLog(log: Log, component: string): Log {
  const parent = log as Partial<Logger>;
  return typeof parent.child === 'function' ? parent.child({ component }) : log;
}

const REDACTED_PATHS = [
  'req.headers["image-search-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-frappe-webhook-signature"]',
  'headers["image-search-api-key"]',
  'headers.authorization',
  '*.headers["image-search-api-key"]',
  '*.headers.authorization',
];

/** Secrets shorter than this are not scrubbed by value (they would match ordinary words). */
const MIN_SECRET_LENGTH = 6;

export interface LoggerSettings {
  level: string;
  /** Values that must never appear in a log line (API keys, tokens, webhook secrets). */
  secrets?: Array<string | undefined>;
  /** Where lines go (default: stdout). */
  destination?: pino.DestinationStream;
}

export function createLogger(settings: LoggerSettings): Logger {
  const secrets = [
    ...new Set((settings.secrets ?? []).filter((s): s is string => !!s && s.length >= MIN_SECRET_LENGTH)),
  ]
    // Longest first, so a secret that contains another is replaced whole.
    .sort((a, b) => b.length - a.length)
    .flatMap((secret) => [secret, JSON.stringify(secret).slice(1, -1)]);
  const options: LoggerOptions = {
    level: settings.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    hooks: {
      streamWrite: (line) => {
        let out = line;
        for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
        return out;
      },
    },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}
