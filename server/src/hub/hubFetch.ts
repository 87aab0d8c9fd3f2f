// The HTTP side of a pull: one `fetch` for @huggingface/hub and the downloader alike that adds the token,
// follows the caller's AbortSignal, gives up after a quiet spell, and remembers the hub's X-Error-Code of a
// failed answer; and the translation of fetch failures and HTTP statuses into HubErrors people can act on.
import { HubError, SET_TOKEN_HINT } from './hubError';

export interface HubFetchOptions {
  token?: string;
  signal?: AbortSignal;
  /** Milliseconds without response headers (or, through `idle()`, body data) before the request is aborted. */
  timeoutMs: number;
  /** Sees each request before it is sent (tests and tracing). */
  onRequest?: (method: string, url: string) => void;
}

/** A request in flight whose idle timer the reader of its body keeps resetting. */
export interface TimedRequest {
  response: Response;
  /** Call on each chunk of body data: restarts the idle timer. */
  idle(): void;
  /** Call when the body is done with (or abandoned): stops the timer. */
  done(): void;
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

export class HubFetch {
  /** The X-Error-Code header (e.g. RepoNotFound, RevisionNotFound, GatedRepo) of the last failed answer. */
  lastErrorCode: string | undefined;

  constructor(private readonly options: HubFetchOptions) {}

  get tokenSent(): boolean {
    return Boolean(this.options.token);
  }

  /** A `fetch` for @huggingface/hub's `fetch` option: the token, the signal and the timeout are added. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = await this.request(input instanceof Request ? input.url : String(input), init);
    request.done(); // the library reads small JSON bodies; the timeout covers the wait for headers
    return request.response;
  };

  /** Sends a request and returns with the headers; the caller reads the body and calls `idle`/`done`. */
  async request(url: string, init: RequestInit = {}): Promise<TimedRequest> {
    this.options.signal?.throwIfAborted();
    const controller = new AbortController();
    const onAbort = () => controller.abort(this.options.signal?.reason);
    this.options.signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        controller.abort(new TimeoutError(`no answer for ${Math.round(this.options.timeoutMs / 1000)} s`));
      }, this.options.timeoutMs);
      timer.unref();
    };
    const done = () => {
      clearTimeout(timer);
      this.options.signal?.removeEventListener('abort', onAbort);
    };
    const headers = new Headers(init.headers);
    if (this.options.token && !headers.has('authorization'))
      headers.set('authorization', `Bearer ${this.options.token}`);
    this.options.onRequest?.(init.method ?? 'GET', url);
    idle();
    try {
      const response = await fetch(url, { ...init, headers, signal: controller.signal, redirect: 'follow' });
      if (!response.ok) this.lastErrorCode = response.headers.get('x-error-code') ?? undefined;
      return { response, idle, done };
    } catch (error) {
      done();
      throw controller.signal.reason instanceof TimeoutError ? controller.signal.reason : error;
    }
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * What went wrong under a failed fetch, if it is a network failure: the system or undici code
 * (`fetch failed` → cause.code), else the innermost message of a `fetch failed`; undefined for other errors.
 */
export function networkCode(error: unknown): string | undefined {
  let innermost: string | undefined;
  for (
    let e = error as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0;
    e && depth < 4;
    depth++
  ) {
    if (e instanceof TimeoutError) return 'ETIMEDOUT';
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
    if (typeof e.message === 'string' && e.message) innermost = e.message;
    e = e.cause as typeof e;
  }
  if (error instanceof TypeError && /fetch failed|terminated|other side closed/i.test(error.message)) return innermost;
  return undefined;
}

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return Boolean(signal?.aborted) || (error instanceof Error && error.name === 'AbortError');
}

/** Cancelled, a network failure, or undefined when `error` is neither. */
export function transportError(error: unknown, endpoint: string, signal?: AbortSignal): HubError | undefined {
  if (error instanceof HubError) return error;
  if (isAbort(error, signal)) return new HubError('Cancelled', 'the pull was cancelled', { cause: error });
  const code = networkCode(error);
  if (!code) return undefined;
  const why = error instanceof TimeoutError ? error.message : code;
  return new HubError(
    'NetworkError',
    `cannot reach ${endpoint} (${why}): check the network, a proxy or HF_ENDPOINT; ` +
      'to use a model pulled before without the network, set HF_HUB_OFFLINE=1',
    { cause: error },
  );
}

/** A 401/403 answer, with what to do and whether a token was sent. */
export function accessDenied(repo: string, endpoint: string, status: number, tokenSent: boolean): HubError {
  const detail = tokenSent
    ? `the token sent was refused (HTTP ${status}): check that it is valid and can read ${repo}, and for a gated ` +
      'model accept its conditions on the model page'
    : `no token was sent (HTTP ${status}): it may be private or gated; ${SET_TOKEN_HINT}`;
  return new HubError('AccessDenied', `cannot access ${repo} on ${endpoint}: ${detail}`);
}
