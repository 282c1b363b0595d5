// Stored images for people to look at (the staff page, an ERPNext form): the original bytes and
// thumbnails. Both are immutable for an image id, so each has a strong ETag from the original's SHA-256
// (a repeat visit costs a 304, nothing decoded or read from disk) and may be kept by the browser for an
// hour. They are user uploads served from the API's origin, so they also get a CSP that runs nothing.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Catalog } from '../catalog/catalog.js';
import { ServiceError } from '../errors.js';
import { API_KEY_HEADER } from '../http/access.js';
import { route } from '../http/routes.js';
import { THUMBNAIL_SIZES, thumbnailEtag, type ThumbnailSize } from '../images/thumbnail.js';
import { ImageIdParams, imageBody, NotModified, ThumbnailQuery } from '../schemas/api.js';
import { STORE_ERRORS } from './items.js';

const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  tif: 'image/tiff',
  heif: 'image/heif',
};
const contentTypeOf = (file: string) =>
  CONTENT_TYPES[file.slice(file.lastIndexOf('.') + 1)] ?? 'application/octet-stream';

/** If-None-Match against our ETag (RFC 9110 weak comparison: a W/ prefix does not matter; `*` matches). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}

/** Validators and caching for an immutable image; true when the client's copy is current (answer 304). */
function isCurrent(request: FastifyRequest, reply: FastifyReply, etag: string): boolean {
  reply.headers({
    etag,
    // The answer depends on the key (401 without one), so a cached copy is only reused for the same key.
    'cache-control': 'private, max-age=3600',
    vary: API_KEY_HEADER,
    'content-security-policy': "default-src 'none'; sandbox",
  });
  return matchesEtag(request.headers['if-none-match'], etag);
}

export const imageRoutes: FastifyPluginAsync<{ catalog: Catalog }> = async (app, { catalog }) => {
  app.get(
    '/images/:image_id',
    route({
      operationId: 'getImage',
      summary: 'The original bytes of a stored image, as uploaded.',
      tags: ['catalog'],
      access: 'read',
      params: ImageIdParams,
      errors: ['image_not_found', ...STORE_ERRORS],
      response: { 200: imageBody('The image file.', Object.values(CONTENT_TYPES)), 304: NotModified },
    }),
    async (request, reply) => {
      const record = await catalog.image((request.params as ImageIdParams).image_id);
      if (isCurrent(request, reply, `"${record.sha256}"`)) return reply.code(304).send();
      return reply.type(contentTypeOf(record.file)).send(await catalog.original(record));
    },
  );

  app.get(
    '/images/:image_id/thumbnail',
    {
      ...route({
        operationId: 'getThumbnail',
        summary: 'A thumbnail of a stored image (WebP, upright, long side at most `size`).',
        description: 'Made from the original on first request and cached on disk beside it.',
        tags: ['catalog'],
        access: 'read',
        params: ImageIdParams,
        querystring: ThumbnailQuery,
        errors: ['image_not_found', 'image_unreadable', ...STORE_ERRORS],
        response: { 200: imageBody('The thumbnail.', ['image/webp']), 304: NotModified },
      }),
      schemaErrorFormatter: (errors, context) =>
        new ServiceError(
          'invalid_request',
          context === 'querystring'
            ? `size must be one of ${THUMBNAIL_SIZES.join(', ')} (pixels of the long side).`
            : `Invalid ${context}: ${errors[0]?.message ?? 'malformed'}.`,
        ),
    },
    async (request, reply) => {
      const size = Number((request.query as ThumbnailQuery).size ?? 256) as ThumbnailSize;
      const record = await catalog.image((request.params as ImageIdParams).image_id);
      if (isCurrent(request, reply, thumbnailEtag(record.sha256, size))) return reply.code(304).send();
      return reply.type('image/webp').send(await catalog.thumbnail(record, size));
    },
  );
};
