// How a route describes itself, once: summary, tags, operationId, access, its body (multipart form or JSON),
// its success responses and every error code it can answer. `route()` turns that into Fastify's schema and
// config: Fastify validates and serializes with it, access.ts enforces `access`, and openapi.ts documents
// all of it (errors grouped by status, each with its codes and meanings from the registry).
import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import type { FastifySchema, RouteShorthandOptions } from 'fastify';
import { ERROR_CODES, statusOf, type ErrorCode } from '../errors.js';
import { ErrorBody } from '../schemas/api.js';
import type { Access } from './access.js';

export type BodyKind = 'multipart' | 'json' | 'raw';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The multipart form of the route (documented as its request body, checked by the intake). */
    form?: TObject;
    body?: BodyKind;
    /** The documented shape of a body the handler reads raw (body 'raw'). */
    rawBody?: TSchema;
    /** Every error code the route can answer (documented by openapi.ts). */
    errors?: ErrorCode[];
  }
}

/** What every route with an uploaded or fetched image can answer. */
const IMAGE_ERRORS: ErrorCode[] = [
  'multipart_required',
  'invalid_multipart',
  'too_many_files',
  'too_many_fields',
  'too_many_parts',
  'field_too_long',
  'duplicate_field',
  'invalid_file',
  'unexpected_file',
  'invalid_field',
  'image_required',
  'ambiguous_image',
  'request_too_large',
  'image_too_large',
  'empty_image',
  'unsupported_image',
  'image_unreadable',
  'invalid_url',
  'url_refused',
  'url_fetch_failed',
  'url_timeout',
  'busy',
];

export interface RouteDescription {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  access: Access;
  /** A multipart form with an image, or a JSON body schema. */
  form?: TObject;
  json?: TSchema;
  /** A JSON body the handler reads raw (a signed webhook): documented, not parsed or validated by Fastify. */
  raw?: TSchema;
  params?: TObject;
  querystring?: TObject;
  /** Success responses by status. */
  response: Record<number, TSchema>;
  /** Error codes the route itself can answer (those of access, the form and the body are added). */
  errors?: ErrorCode[];
}

export function errorsOf(description: RouteDescription): ErrorCode[] {
  const codes = new Set<ErrorCode>(description.errors ?? []);
  if (description.access === 'read' || description.access === 'write') codes.add('unauthorized');
  if (description.access === 'write') codes.add('forbidden');
  if (description.form) {
    for (const code of IMAGE_ERRORS) codes.add(code);
    if (description.form.required?.length) codes.add('missing_field');
  }
  if (description.json)
    for (const code of ['invalid_request', 'json_required', 'request_too_large'] as const) codes.add(code);
  if (description.raw) for (const code of ['invalid_request', 'request_too_large'] as const) codes.add(code);
  if (description.params || description.querystring) codes.add('invalid_request');
  if (description.params) codes.add('invalid_path');
  codes.add('internal_error');
  return [...codes];
}

/**
 * Error responses grouped by status, each listing its codes and their meanings. `exact` narrows `error` to
 * those codes (for the document); serialization uses the plain ErrorBody, so an unlisted code can never
 * turn an error answer into a serializer failure.
 */
export function errorResponses(codes: ErrorCode[], exact = false): Record<number, TSchema> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => {
      const description = list.map((code) => `\`${code}\`: ${ERROR_CODES[code][1]}`).join('\n\n');
      const schema = exact
        ? Type.Object({ error: Type.Union(list.map((code) => Type.Literal(code))), message: Type.String() })
        : Type.Object(ErrorBody.properties);
      return [status, { ...schema, description }];
    }),
  );
}

export function route(description: RouteDescription): RouteShorthandOptions {
  const schema: FastifySchema & Record<string, unknown> = {
    operationId: description.operationId,
    summary: description.summary,
    description: description.description,
    tags: description.tags,
    security: description.access === 'read' || description.access === 'write' ? [{ apiKey: [] }] : [],
    response: { ...errorResponses(errorsOf(description)), ...description.response },
  };
  if (description.params) schema.params = description.params;
  if (description.querystring) schema.querystring = description.querystring;
  if (description.json) schema.body = description.json;
  return {
    schema,
    config: {
      access: description.access,
      errors: errorsOf(description),
      ...(description.form ? { form: description.form, body: 'multipart' as const } : {}),
      ...(description.json ? { body: 'json' as const } : {}),
      ...(description.raw ? { body: 'raw' as const, rawBody: description.raw } : {}),
    },
  };
}
