// Reads a multipart form and its image: exactly one of an uploaded `file` part or an `image_url`
// field (fetched under the SSRF rules). Byte limits are enforced by @fastify/multipart while streaming.
import type { FastifyRequest } from 'fastify';
import { badRequest, ServiceError } from '../errors.js';
import { fetchImage, type UrlFetchPolicy } from '../images/fetch-url.js';

export interface ImageForm {
  fields: Record<string, string>;
  bytes: Buffer;
}

export const MULTIPART_LIMITS = { files: 1, fields: 20, parts: 24, fieldSize: 64 * 1024 };

export class ImageIntake {
  constructor(private readonly urlPolicy: UrlFetchPolicy) {}

  async read(request: FastifyRequest): Promise<ImageForm> {
    if (!request.isMultipart()) {
      throw new ServiceError(
        415,
        'multipart_required',
        'Send the request as multipart/form-data with a `file` part or an `image_url` field.',
      );
    }
    const { fields, file } = await readParts(request);
    if (Object.hasOwn(fields, 'file')) {
      throw badRequest(
        'invalid_file',
        'The `file` field must be an uploaded file (curl: -F "file=@photo.jpg"), not a text value.',
      );
    }
    const url = fields.image_url?.trim();
    if (file && url)
      throw badRequest('ambiguous_image', 'Send either a `file` part or an `image_url` field, not both.');
    if (file) return { fields, bytes: file };
    if (url) return { fields, bytes: await fetchImage(url, this.urlPolicy) };
    throw badRequest('image_required', 'Send the image as a `file` part or an `image_url` field.');
  }
}

async function readParts(request: FastifyRequest): Promise<{ fields: Record<string, string>; file?: Buffer }> {
  const fields: Record<string, string> = {};
  let file: Buffer | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          throw badRequest(
            'unexpected_file',
            `Unexpected file part ${JSON.stringify(part.fieldname)}; send the image as the part named \`file\`.`,
          );
        }
        file = await part.toBuffer();
      } else {
        if (Object.hasOwn(fields, part.fieldname)) {
          throw badRequest('duplicate_field', `The field ${JSON.stringify(part.fieldname)} was sent more than once.`);
        }
        fields[part.fieldname] = String(part.value);
      }
    }
  } catch (error) {
    // Limit errors carry a Fastify code (mapped by the error handler); the parser's own errors do not.
    if (error instanceof ServiceError || (error as { code?: string }).code?.startsWith('FST_')) throw error;
    throw badRequest(
      'invalid_multipart',
      `The multipart body could not be read (${(error as Error).message}). Send a well-formed ` +
        `multipart/form-data request.`,
    );
  }
  return { fields, file };
}

/** A text field that must be present: non-blank, at most `max` characters, no NUL. */
export function requiredText(fields: Record<string, string>, name: string, max = 1024): string {
  const value = fields[name];
  if (value === undefined || value.trim() === '')
    throw badRequest('missing_field', `The field \`${name}\` is required.`);
  return checkedText(value, name, max);
}

/** An optional text field; blank means absent (null). */
export function optionalText(fields: Record<string, string>, name: string, max = 1024): string | null {
  const value = fields[name];
  return value === undefined || value.trim() === '' ? null : checkedText(value, name, max);
}

function checkedText(value: string, name: string, max: number): string {
  if ([...value].length > max)
    throw badRequest('invalid_field', `The field \`${name}\` is longer than ${max} characters.`);
  if (value.includes('\u0000')) throw badRequest('invalid_field', `The field \`${name}\` contains a NUL character.`);
  return value;
}
