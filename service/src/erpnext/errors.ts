// What can go wrong when talking to ERPNext, as one typed error. `kind` is for code (retry, skip an image, fall
// back), the message is for the operator: it says what failed and which setting or role to check. Messages never
// contain the token, and name the host and the API path only (no query string: filters can be long).
export type ErpNextErrorKind =
  /** 401: the key/secret pair was refused. */
  | 'auth'
  /** 403: the API user lacks a permission (or a private file is not readable by it). */
  | 'forbidden'
  /** 404: the document or file does not exist. */
  | 'not_found'
  /** 417: Frappe refused the query (unknown field, bad operator): usually ERPNEXT_ITEM_FILTERS. */
  | 'invalid_query'
  /** 429 after every retry. */
  | 'rate_limited'
  /** 5xx after every retry. */
  | 'server'
  /** Connection refused or reset, DNS failure, TLS failure: after every retry. */
  | 'unreachable'
  /** No answer in time: after every retry. */
  | 'timeout'
  /** The address is never reached (instance metadata, or a private redirect target that is not ERPNext). */
  | 'refused'
  /** A file larger than the limit. */
  | 'too_large'
  /** An answer that is not what Frappe sends (not JSON, wrong shape, another status). */
  | 'bad_response';

/** Kinds worth another attempt: the same request may succeed later. */
export const RETRYABLE_KINDS: ReadonlySet<ErpNextErrorKind> = new Set([
  'rate_limited',
  'server',
  'unreachable',
  'timeout',
]);

export class ErpNextError extends Error {
  override name = 'ErpNextError';
  constructor(
    readonly kind: ErpNextErrorKind,
    message: string,
    readonly details: {
      /** HTTP status, when ERPNext answered. */
      status?: number;
      /** Frappe's exception class (`exc_type` of the JSON error body), e.g. DoesNotExistError. */
      excType?: string;
      /** Seconds from Retry-After on a 429 or 503. */
      retryAfterSeconds?: number;
      /** Attempts made before giving up. */
      attempts?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }

  get retryable(): boolean {
    return RETRYABLE_KINDS.has(this.kind);
  }
}
