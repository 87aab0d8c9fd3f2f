// Errors the service answers with a status code and a JSON body: OpenAI's {"error": {message, type, code}}
// under /v1 and elsewhere, the Open Inference Protocol's {"error": "message"} under /v2.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'queue_full'
  | 'unavailable'
  | 'timeout'
  | 'payload_too_large'
  | 'server_error';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = status === 404
      ? 'not_found_error'
      : status >= 500
        ? 'server_error'
        : 'invalid_request_error',
    /** The request field at fault, when there is one. */
    readonly param?: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, param?: string) =>
  new HttpError(400, message, 'invalid_request_error', param);
export const notFound = (message: string) => new HttpError(404, message, 'not_found_error');
export const queueFull = (message: string) => new HttpError(429, message, 'queue_full');
export const unavailable = (message: string) => new HttpError(503, message, 'unavailable');
export const timedOut = (message: string) => new HttpError(504, message, 'timeout');

/** The JSON body of an error for a request path. */
export function errorBody(url: string, error: HttpError): object {
  if (url.startsWith('/v2')) return { error: error.message };
  return { error: { message: error.message, type: error.type, param: error.param ?? null, code: error.status } };
}

/** Errors from the scheduler or runtime as HTTP errors: request timeouts are 504, runtime failures 500. */
export function asHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if ((e as { name?: unknown })?.name === 'TimeoutError') return timedOut('the request timed out');
  return new HttpError(500, e instanceof Error ? e.message : String(e));
}
