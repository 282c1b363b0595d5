// Errors that reach a caller. Each carries the HTTP status and a stable machine-readable code; the
// message says what went wrong and what to do. Anything else that escapes is a bug (500, logged).
export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string) => new ServiceError(400, code, message);
export const notFound = (code: string, message: string) => new ServiceError(404, code, message);
export const insufficientStorage = (message: string) => new ServiceError(507, 'insufficient_storage', message);
export const conflict = (code: string, message: string) => new ServiceError(409, code, message);
export const unavailable = (code: string, message: string, retryAfterSeconds?: number) =>
  new ServiceError(
    503,
    code,
    message,
    retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) },
  );
