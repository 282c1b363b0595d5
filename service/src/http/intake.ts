// Reads a multipart form and its image: exactly one of an uploaded `file` part or an `image_url` field
// (fetched under the SSRF rules, cancelled if the client goes away). The body is streamed and counted
// against a byte budget shared by all requests, so a burst of large uploads is refused (503 busy,
// Retry-After) before it is read instead of filling memory; the budget is given back when the answer
// has been sent. While the embedding queue is full, a body is read without being parsed and refused the same
// way. The text fields are checked against the route's form schema (schemas/api.ts).
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { TObject } from '@sinclair/typebox';
import { retryLater, ServiceError, type ErrorCode } from '../errors.js';
import { fetchImage, type UrlFetchPolicy } from '../images/fetch-url.js';
import { embeddingBusy } from '../embedding/work-queue.js';

export const MULTIPART_LIMITS = { files: 1, fields: 20, parts: 24, fieldSize: 64 * 1024 };
/** Bytes a multipart body may add around the image (boundaries, headers, fields). */
const FORM_OVERHEAD = MULTIPART_LIMITS.fields * MULTIPART_LIMITS.fieldSize + 64 * 1024;

/** Bytes of request bodies held by requests in flight, all together. */
export class ByteBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  tryTake(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export interface IntakeOptions {
  urlPolicy: UrlFetchPolicy;
  maxImageBytes: number;
  budget: ByteBudget;
  /** Told how each image_url fetch ended: 'ok' or the error code (for /metrics). */
  onUrlFetch?: (outcome: string) => void;
  /** True when the embedding queue is full (the image would be refused once read). */
  embeddingFull?: () => boolean;
}

export interface ImageForm<T> {
  fields: T;
  bytes: Buffer;
}

const busy = () => retryLater('busy', 'The server is receiving too many uploads at once. Retry in a moment.', 1);

/** Largest body a form with one image may have. */
export const maxFormBytes = (maxImageBytes: number) => maxImageBytes + FORM_OVERHEAD;

export class ImageIntake {
  private readonly checks = new WeakMap<TObject, TypeCheck<TObject>>();

  constructor(private readonly options: IntakeOptions) {}

  async read<T extends TObject>(
    request: FastifyRequest,
    reply: FastifyReply,
    form: T,
  ): Promise<ImageForm<T['static']>> {
    if (!request.isMultipart()) {
      throw new ServiceError(
        'multipart_required',
        'Send the request as multipart/form-data with a `file` part or an `image_url` field.',
      );
    }
    const reservation = this.reserve(request, reply);
    // The embedding queue is full, so the image would be refused once parsed: under overload (a client that
    // ignores Retry-After) parsing costs the main thread as much as the answers it can still give. The body is
    // read unparsed, so the connection stays open for the retry (closing it costs more: README "Overload").
    if (this.options.embeddingFull?.()) {
      await drain(request.raw);
      throw embeddingBusy();
    }
    const { fields, file } = await readParts(request, this.options.maxImageBytes, reservation);
    if (Object.hasOwn(fields, 'file')) {
      throw new ServiceError(
        'invalid_file',
        'The `file` field must be an uploaded file (curl: -F "file=@photo.jpg"), not a text value.',
      );
    }
    const checked = this.check(form, fields);
    const url = (checked as { image_url?: string }).image_url;
    if (file && url)
      throw new ServiceError('ambiguous_image', 'Send either a `file` part or an `image_url` field, not both.');
    if (file) return { fields: checked, bytes: file };
    if (url) {
      // A client that disconnects cancels the fetch it asked for.
      const abort = new AbortController();
      const onClose = () => abort.abort(new Error('the client closed the connection'));
      request.raw.once('close', onClose);
      try {
        const bytes = await fetchImage(url, this.options.urlPolicy, abort.signal).then(
          (fetched) => (this.options.onUrlFetch?.('ok'), fetched),
          (error: unknown) => {
            this.options.onUrlFetch?.(error instanceof ServiceError ? error.code : 'aborted');
            throw error;
          },
        );
        if (!reservation.take(bytes.length)) throw busy();
        return { fields: checked, bytes };
      } finally {
        request.raw.off('close', onClose);
      }
    }
    throw new ServiceError('image_required', 'Send the image as a `file` part or an `image_url` field.');
  }

  /**
   * Takes the request's declared size from the budget up front (413 when it can never fit, 503 when it
   * does not fit now); a body without Content-Length takes from the budget as it arrives. Everything is
   * given back when the response is sent or the connection closes.
   */
  private reserve(request: FastifyRequest, reply: FastifyReply) {
    const { budget, maxImageBytes } = this.options;
    const declared = Number(request.headers['content-length']);
    const max = maxFormBytes(maxImageBytes);
    if (Number.isFinite(declared) && declared > max) {
      // Only the image can make a form this large (the other fields are capped far below).
      throw new ServiceError(
        'image_too_large',
        `The request has ${declared} bytes; an image may have at most MAX_IMAGE_BYTES = ${maxImageBytes} bytes. ` +
          'Send a smaller image.',
      );
    }
    let held = 0;
    const take = (bytes: number) => {
      if (!budget.tryTake(bytes)) return false;
      held += bytes;
      return true;
    };
    reply.raw.once('close', () => {
      budget.give(held);
      held = 0;
    });
    const upFront = Number.isFinite(declared) && declared > 0;
    if (upFront && !take(declared)) throw busy();
    return {
      /** For a body of unknown length: each chunk as it arrives. */
      streamed: (bytes: number) => upFront || take(bytes),
      /** For fetched image bytes (not part of the body). */
      take,
    };
  }

  /** Checks (and converts, e.g. top_k to a number) the text fields against the route's form schema. */
  private check<T extends TObject>(form: T, raw: Record<string, string>): T['static'] {
    let compiled = this.checks.get(form);
    if (!compiled) this.checks.set(form, (compiled = TypeCompiler.Compile(form)));
    const known: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(raw)) {
      if (!(name in form.properties)) continue; // undocumented fields are ignored, as they always were
      if (value.includes('\u0000')) throw invalid(name, 'contains a NUL character');
      if (value.includes('\uFFFD')) throw invalid(name, 'is not valid UTF-8');
      if (value.trim() === '') continue; // blank = not given
      known[name] = value;
    }
    const converted = Value.Default(form, convertFields(form, known)) as Record<string, unknown>;
    // The compiled check is fast; listing the errors (to name the field) is not, so it runs only on a failure.
    if (compiled.Check(converted)) return converted;
    const error = compiled.Errors(converted).First();
    if (!error) return converted;
    const name = error.path.replace(/^\//, '').split('/')[0] ?? '';
    const code = (error.schema as { 'x-error-code'?: ErrorCode })['x-error-code'];
    if (converted[name] === undefined && form.required?.includes(name)) {
      throw new ServiceError('missing_field', `The field \`${name}\` is required.`);
    }
    if (code) throw new ServiceError(code, `\`${name}\` ${describe(error.schema)} (got ${JSON.stringify(raw[name])}).`);
    throw invalid(name, `${error.message.toLowerCase()} (${describe(error.schema)})`);
  }
}

/** Form values are text: whole numbers and booleans are converted only when they are exactly that. */
function convertFields(form: TObject, fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    const type = (form.properties[name] as { type?: string } | undefined)?.type;
    const text = String(value).trim();
    if (type === 'integer' && /^[-+]?\d+$/.test(text)) out[name] = Number(text);
    else if (type === 'number' && text !== '' && Number.isFinite(Number(text))) out[name] = Number(text);
    else if (type === 'boolean' && (text === 'true' || text === 'false')) out[name] = text === 'true';
    else out[name] = value;
  }
  return out;
}

const invalid = (name: string, what: string) => new ServiceError('invalid_field', `The field \`${name}\` ${what}.`);

function describe(schema: unknown): string {
  const s = schema as { type?: string; minimum?: number; maximum?: number; maxLength?: number; enum?: unknown[] };
  if (s.type === 'integer') return `must be a whole number from ${s.minimum ?? '-∞'} to ${s.maximum ?? '∞'}`;
  if (s.type === 'string' && s.maxLength !== undefined) return `must be at most ${s.maxLength} characters`;
  return 'has a wrong value';
}

async function readParts(
  request: FastifyRequest,
  maxImageBytes: number,
  reservation: { streamed: (bytes: number) => boolean },
): Promise<{ fields: Record<string, string>; file?: Buffer }> {
  const fields: Record<string, string> = {};
  let file: Buffer | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          throw new ServiceError(
            'unexpected_file',
            `Unexpected file part ${JSON.stringify(part.fieldname)}; send the image as the part named \`file\`.`,
          );
        }
        file = await readFile(part.file, maxImageBytes, reservation);
      } else {
        if (Object.hasOwn(fields, part.fieldname)) {
          throw new ServiceError(
            'duplicate_field',
            `The field ${JSON.stringify(part.fieldname)} was sent more than once.`,
          );
        }
        if (part.valueTruncated)
          throw new ServiceError(
            'field_too_long',
            `The field ${JSON.stringify(part.fieldname)} is longer than 64 KiB.`,
          );
        fields[part.fieldname] = String(part.value);
      }
    }
  } catch (error) {
    // Limit errors carry a Fastify code (mapped by the error handler); the parser's own errors do not.
    if (error instanceof ServiceError || (error as { code?: string }).code?.startsWith('FST_')) throw error;
    throw new ServiceError(
      'invalid_multipart',
      `The multipart body could not be read (${(error as Error).message}). Send a well-formed multipart/form-data ` +
        'request.',
    );
  }
  return { fields, file };
}

/** Reads a request's body to its end without keeping it. */
function drain(body: IncomingMessage): Promise<void> {
  if (body.complete || body.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    body.once('end', resolve).once('close', resolve).once('error', resolve);
    body.resume();
  });
}

/**
 * The file part's bytes. Fails as soon as the part passes MAX_IMAGE_BYTES (busboy only truncates: waiting
 * for the part to end would read an endless upload to its end) or the byte budget runs out.
 */
function readFile(
  stream: NodeJS.ReadableStream & { truncated?: boolean; destroy(): void },
  maxImageBytes: number,
  reservation: { streamed: (bytes: number) => boolean },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const fail = (error: Error) => {
      stream.removeAllListeners('data');
      stream.resume(); // let the parser drain; the answer closes the connection anyway
      reject(error);
    };
    stream.on('data', (chunk: Buffer) => {
      if (!reservation.streamed(chunk.length)) return fail(busy());
      chunks.push(chunk);
    });
    stream.once('limit', () => fail(imageTooLarge(maxImageBytes)));
    stream.once('error', (error: Error) => fail(error));
    stream.once('end', () => (stream.truncated ? fail(imageTooLarge(maxImageBytes)) : resolve(Buffer.concat(chunks))));
  });
}

export const imageTooLarge = (maxImageBytes: number) =>
  new ServiceError(
    'image_too_large',
    `The file is larger than MAX_IMAGE_BYTES = ${maxImageBytes} bytes. Send a smaller image.`,
  );
