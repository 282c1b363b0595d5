// Every error leaves as JSON {error, message} with a code from the registry (service/src/errors.ts):
// ServiceErrors carry theirs; framework errors (multipart limits, bad JSON, undecodable URLs, unknown
// routes, oversized headers, timeouts at the socket level) are mapped here; anything else is a bug,
// logged with its stack and answered with a 500 that reveals nothing. An answer given before the request
// body was read closes the connection, so the server never reads (or waits for) a body it refused.
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ServiceError, statusOf, type ErrorCode } from '../errors.js';
import { StoreFullError, StoreUnavailableError } from '../store/port.js';
import { imageTooLarge } from './intake.js';

/** Fastify and @fastify/multipart error codes → ours. */
const FRAMEWORK_ERRORS: Record<string, (error: FastifyError, limits: ErrorLimits) => ServiceError> = {
  FST_REQ_FILE_TOO_LARGE: (_, { maxImageBytes }) => imageTooLarge(maxImageBytes),
  FST_ERR_CTP_BODY_TOO_LARGE: (_, { jsonBodyBytes }) =>
    new ServiceError('request_too_large', `The JSON body is larger than ${jsonBodyBytes} bytes; send less.`),
  FST_INVALID_MULTIPART_CONTENT_TYPE: () =>
    new ServiceError(
      'multipart_required',
      'Send the request as multipart/form-data (fields and a `file` part, or an `image_url` field).',
    ),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (_, { bodyKind }) =>
    bodyKind === 'json'
      ? new ServiceError('json_required', 'Send the body as JSON with Content-Type: application/json.')
      : new ServiceError('multipart_required', 'Unsupported Content-Type. Send multipart/form-data.'),
  FST_FILES_LIMIT: () => new ServiceError('too_many_files', 'Send exactly one file part, named `file`.'),
  FST_FIELDS_LIMIT: () =>
    new ServiceError('too_many_fields', 'The form has too many fields. Send only the documented fields.'),
  FST_PARTS_LIMIT: () =>
    new ServiceError('too_many_parts', 'The form has too many parts. Send only the documented fields and one file.'),
  FST_PROTO_VIOLATION: () => new ServiceError('invalid_field', 'The form contains a forbidden field name.'),
  FST_MULTIPART_FIELD_SIZE_LIMIT: () => new ServiceError('field_too_long', 'A form field is longer than 64 KiB.'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new ServiceError('invalid_request', 'The request body is empty; send JSON.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new ServiceError('invalid_request', 'The request body is not valid JSON.'),
  FST_ERR_BAD_URL: () =>
    new ServiceError('invalid_path', 'The URL path cannot be decoded: percent-encode it as UTF-8 (e.g. %C3%A9 for é).'),
};

export interface ErrorLimits {
  maxImageBytes: number;
  jsonBodyBytes: number;
  bodyKind?: string;
}

/** How long a refused upload's connection is drained (not read into memory) after the answer. */
const LINGER_MS = 2000;

export function sendError(reply: FastifyReply, error: ServiceError): FastifyReply {
  // Refused before the body arrived (401, 413, 503 busy): close the connection instead of reading the rest.
  if (!reply.request.raw.complete) {
    reply.header('connection', 'close');
    lingerOnClose(reply.request.raw.socket);
  }
  return reply.code(error.status).headers(error.headers).send({ error: error.code, message: error.message });
}

/**
 * Node closes a `Connection: close` socket right after the answer; with the client still sending, the
 * kernel then resets the connection and the client may lose the answer it was sent. Instead: finish our
 * side, drop whatever still arrives for a moment, then close (what nginx calls a lingering close).
 */
function lingerOnClose(socket: Socket | null): void {
  if (!socket) return;
  (socket as Socket & { destroySoon: () => void }).destroySoon = function lingeringClose(this: Socket) {
    this.end();
    this.resume();
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  };
}

function mapError(error: FastifyError, request: FastifyRequest, limits: ErrorLimits): ServiceError {
  if (error instanceof ServiceError) return error;
  if (error instanceof StoreFullError) {
    request.log.warn({ err: error }, 'vector store disk full');
    return new ServiceError('insufficient_storage', `${error.message} Retry after that.`);
  }
  if (error instanceof StoreUnavailableError) {
    request.log.warn({ err: error }, 'vector store unavailable');
    return new ServiceError('store_unavailable', `${error.message} Retry shortly.`, { 'retry-after': '5' });
  }
  const mapped = error.code ? FRAMEWORK_ERRORS[error.code] : undefined;
  if (mapped) return mapped(error, { ...limits, bodyKind: request.routeOptions.config?.body });
  if (error.validation) {
    const where = error.validationContext ?? 'request';
    return new ServiceError('invalid_request', `Invalid ${where}: ${error.message}.`);
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    request.log.info({ err: error }, 'client error without a mapping');
    return new ServiceError('invalid_request', `The request was refused (${error.statusCode}).`);
  }
  request.log.error({ err: error }, 'unexpected error');
  return new ServiceError(
    'internal_error',
    `Unexpected server error (request ${request.id}). It was logged; retry or report it.`,
  );
}

export const errorHandling = fp(
  async (app: FastifyInstance, limits: ErrorLimits) => {
    app.setErrorHandler((error: FastifyError, request, reply) => sendError(reply, mapError(error, request, limits)));
    app.setNotFoundHandler({}, (request, reply) =>
      sendError(
        reply,
        new ServiceError(
          'not_found',
          `No route ${request.method} ${request.url.split('?')[0].slice(0, 200)}. See GET /docs for the endpoints.`,
        ),
      ),
    );
  },
  { name: 'error-handling' },
);

/** Fastify's frameworkErrors option: errors raised before routing (an undecodable URL). */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, mapError(error, request, { maxImageBytes: 0, jsonBodyBytes: 0 }));
}

/** Node's HTTP parser failures (before Fastify sees a request): one JSON answer, then close the socket. */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const code: ErrorCode =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'headers_too_large'
      : error.code === 'HPE_URI_TOO_LONG'
        ? 'uri_too_long'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'request_timeout'
          : 'invalid_request';
  const messages: Record<string, string> = {
    headers_too_large: 'The request headers are too large (16 KiB at most); send fewer or shorter headers.',
    uri_too_long: 'The URL is too long; item ids may have at most 1024 characters.',
    request_timeout: 'The request was not received completely in time; retry on a faster connection.',
    invalid_request: 'The HTTP request could not be parsed; send a well-formed HTTP/1.1 request.',
  };
  const body = JSON.stringify({ error: code, message: messages[code] });
  const status = statusOf(code);
  socket.end(
    `HTTP/1.1 ${status} ${code.replace(/_/g, ' ')}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
