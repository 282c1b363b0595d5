// Every error leaves as JSON {error, message} with the right status: ServiceErrors carry theirs,
// framework errors (multipart limits, bad content types, unknown routes) are mapped here, and anything
// else is a bug: logged with its stack, answered with a 500 that reveals nothing.
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { ServiceError } from '../errors.js';
import { StoreFullError, StoreUnavailableError } from '../store/port.js';

/** Fastify and @fastify/multipart error codes → our status, code and advice. */
const FRAMEWORK_ERRORS: Record<string, (maxBytes: number) => ServiceError> = {
  FST_REQ_FILE_TOO_LARGE: (max) =>
    new ServiceError(413, 'image_too_large', `The file is larger than ${max} bytes. Send a smaller image.`),
  FST_ERR_CTP_BODY_TOO_LARGE: (max) =>
    new ServiceError(
      413,
      'request_too_large',
      `The request is larger than the limit (${max} bytes of image). Send a smaller image.`,
    ),
  FST_INVALID_MULTIPART_CONTENT_TYPE: () =>
    new ServiceError(
      415,
      'multipart_required',
      'Send the request as multipart/form-data (fields and a `file` part, or an `image_url` field).',
    ),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new ServiceError(415, 'multipart_required', 'Unsupported Content-Type. Send multipart/form-data.'),
  FST_FILES_LIMIT: () => new ServiceError(400, 'too_many_files', 'Send exactly one file part, named `file`.'),
  FST_FIELDS_LIMIT: () =>
    new ServiceError(400, 'too_many_fields', 'The form has too many fields. Send only the documented fields.'),
  FST_PARTS_LIMIT: () =>
    new ServiceError(
      400,
      'too_many_parts',
      'The form has too many parts. Send only the documented fields and one file.',
    ),
  FST_PROTO_VIOLATION: () => new ServiceError(400, 'invalid_request', 'The form contains a forbidden field name.'),
  FST_MULTIPART_FIELD_SIZE_LIMIT: () => new ServiceError(400, 'field_too_long', 'A form field is too long.'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new ServiceError(400, 'invalid_request', 'The request body is empty.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new ServiceError(400, 'invalid_request', 'The request body is not valid JSON.'),
};

export function sendError(reply: FastifyReply, error: ServiceError): FastifyReply {
  return reply.code(error.status).headers(error.headers).send({ error: error.code, message: error.message });
}

export const errorHandling = fp(
  async (app: FastifyInstance, options: { maxImageBytes: number }) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      if (error instanceof ServiceError) return sendError(reply, error);
      if (error instanceof StoreFullError) {
        request.log.warn({ err: error }, 'vector store disk full');
        return sendError(reply, new ServiceError(507, 'insufficient_storage', `${error.message} Retry after that.`));
      }
      if (error instanceof StoreUnavailableError) {
        request.log.warn({ err: error }, 'vector store unavailable');
        return sendError(
          reply,
          new ServiceError(503, 'store_unavailable', `${error.message} Retry shortly.`, { 'retry-after': '5' }),
        );
      }
      const mapped = error.code ? FRAMEWORK_ERRORS[error.code] : undefined;
      if (mapped) return sendError(reply, mapped(options.maxImageBytes));
      if (error.validation) {
        return sendError(reply, new ServiceError(400, 'invalid_request', `Invalid request: ${error.message}.`));
      }
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return sendError(reply, new ServiceError(error.statusCode, 'invalid_request', error.message));
      }
      request.log.error({ err: error }, 'unexpected error');
      return sendError(
        reply,
        new ServiceError(
          500,
          'internal_error',
          `Unexpected server error (request ${request.id}). It was logged; retry or report it.`,
        ),
      );
    });

    app.setNotFoundHandler((request, reply) =>
      sendError(
        reply,
        new ServiceError(
          404,
          'not_found',
          `No route ${request.method} ${request.url.split('?')[0]}. See the README for the endpoints.`,
        ),
      ),
    );
  },
  { name: 'error-handling' },
);
