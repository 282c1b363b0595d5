// Errors that reach a caller, and the one registry of their codes: each stable `error` code has one HTTP
// status and a one-line meaning. The README's error table and the OpenAPI document are checked against and
// generated from this list. A ServiceError's message says what went wrong and what to do; anything else
// that escapes is a bug (500, logged).
export const ERROR_CODES = {
  invalid_request: [400, 'The request is malformed (invalid JSON, a parameter of the wrong type or format).'],
  invalid_path: [400, 'The URL path cannot be decoded (bad percent-encoding or not UTF-8).'],
  missing_field: [400, 'A required field is missing or blank.'],
  invalid_field: [400, 'A field is too long, contains a NUL or invalid UTF-8, or has a wrong value.'],
  image_required: [400, 'Neither a `file` part nor an `image_url` field was sent.'],
  ambiguous_image: [400, 'Both a `file` part and an `image_url` field were sent.'],
  invalid_file: [400, 'The `file` field was sent as text, not as a file part.'],
  unexpected_file: [400, 'A file part has another name than `file`.'],
  too_many_files: [400, 'More than one file part.'],
  too_many_fields: [400, 'More form fields than the documented ones.'],
  too_many_parts: [400, 'More form parts than the documented fields and one file.'],
  field_too_long: [400, 'A form field exceeds 64 KiB.'],
  duplicate_field: [400, 'A form field was sent twice.'],
  invalid_multipart: [400, 'The multipart body cannot be parsed.'],
  invalid_top_k: [400, '`top_k` is not a whole number from 1 to MAX_TOP_K.'],
  invalid_filter: [400, '`filter` is not JSON of item_group/brand values (a string or a list of strings).'],
  invalid_min_confidence: [400, '`min_confidence` is not a number from 0 to 1.'],
  empty_image: [400, 'The image has zero bytes.'],
  invalid_url: [400, '`image_url` is not an absolute http(s) URL without credentials.'],
  url_refused: [400, '`image_url` points at an address the SSRF rules refuse.'],
  unauthorized: [401, 'The API key is missing or wrong.'],
  invalid_signature: [401, 'The webhook signature (X-Frappe-Webhook-Signature) is missing or wrong.'],
  forbidden: [403, 'The key is valid but only for reading; this route changes data.'],
  not_found: [404, 'No such route.'],
  item_not_found: [404, 'No item with this id.'],
  image_not_found: [404, 'No image with this id (of this item).'],
  request_timeout: [408, 'The request was not received completely in time.'],
  item_exists: [409, '`/ingest` of an item that exists; add images to it instead.'],
  image_too_large: [413, 'The image has more bytes than MAX_IMAGE_BYTES or more pixels than MAX_IMAGE_PIXELS.'],
  request_too_large: [413, 'The request body is larger than this route accepts.'],
  uri_too_long: [414, 'The URL is longer than the server accepts.'],
  unsupported_image: [415, 'Not a JPEG, PNG, WebP, GIF, AVIF, TIFF or decodable HEIC image.'],
  multipart_required: [415, 'The route needs multipart/form-data.'],
  json_required: [415, 'The route needs a JSON body (application/json).'],
  image_unreadable: [422, 'The image header was read but its pixels cannot be decoded (truncated, corrupt).'],
  headers_too_large: [431, 'The request headers are larger than the server accepts.'],
  internal_error: [500, 'An unexpected server error (a bug); it was logged with the request id.'],
  url_fetch_failed: [502, 'The `image_url` host failed (DNS, refused, TLS, non-2xx, too many redirects).'],
  store_unavailable: [503, 'The vector store does not answer (Retry-After).'],
  busy: [503, 'Too many images or upload bytes in flight (Retry-After).'],
  not_ready: [503, 'The service is not ready (store or model).'],
  collection_missing: [503, 'The collection behind QDRANT_COLLECTION no longer exists.'],
  model_unavailable: [503, 'The live collection uses a model this server cannot load.'],
  model_mismatch: [503, "The live collection's width does not match its model."],
  url_timeout: [504, 'The `image_url` fetch timed out.'],
  insufficient_storage: [507, 'The disk of the images or of the store is full; nothing was stored.'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const statusOf = (code: ErrorCode): number => ERROR_CODES[code][0];

export class ServiceError extends Error {
  override name = 'ServiceError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = statusOf(code);
  }
}

/** A 503 that tells the client when to retry. */
export const retryLater = (code: ErrorCode, message: string, seconds: number) =>
  new ServiceError(code, message, { 'retry-after': String(seconds) });
