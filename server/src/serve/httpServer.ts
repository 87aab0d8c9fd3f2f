// The model service as a library: startServer() loads models and serves them over HTTP (fastify) with the
// OpenAI-compatible /v1 routes, the Open Inference Protocol /v2 routes and Prometheus /metrics; API-key auth off
// loopback, a body size limit, JSON errors, hot reload per model and a graceful close.
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import * as path from 'node:path';
import { isClassifierFolder } from '../classify/classifier';
import { bearerChecker, checkApiKey, isLoopbackHost } from './auth';
import { ClassifierSet, registerClassifyRoutes } from './classifyRoutes';
import { HttpError, errorBody, unavailable } from './errors';
import { registerInferenceRoutes } from './inferenceRoutes';
import { ServiceMetrics } from './metrics';
import { ModelSet } from './modelSet';
import { checkModelName, nameForFolder, resolveModelDir } from './modelNames';
import { registerOpenAiRoutes } from './openaiRoutes';
import { RouteContext } from './routeContext';

/**
 * A model to serve: a folder (named after it), a name and a folder (with the deployment version it is, for the
 * OIP version routes), or a name inside `modelsDirectory`.
 */
export type ModelSource = string | { name?: string; dir: string; version?: number };

export interface ServeOptions {
  models: readonly ModelSource[];
  /** Where bare names in `models` (and reload names without a folder) are looked up; names cannot leave it. */
  modelsDirectory?: string;
  /** Default 127.0.0.1. Any non-loopback address needs `apiKey`. */
  host?: string;
  /** Default 0: any free port (see `url`). */
  port?: number;
  /** Required off loopback; when set, every route but /v2/health/* needs `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Batch concurrent completions into shared runs (default true); false decodes one sequence per run. */
  batching?: boolean;
  /** Most sequences decoded together per model (default 32). */
  maxBatchSize?: number;
  /**
   * Most key/value positions (rows × longest row) per decode step when admitting rows (default 16384; see
   * BatchScheduler).
   */
  maxBatchTokens?: number;
  /** Most positions of recent prompts each model keeps for prompts that start the same way (default 4096; 0: none). */
  promptCachePositions?: number;
  /** Most requests waiting per model beyond the ones decoding; more get 429 (default 64). */
  maxQueue?: number;
  /** Per-request time limit; a request still queued or running then gets 504 (default 60 s). */
  requestTimeoutMs?: number;
  /** Largest request body (default 1 MiB); larger ones get 413. */
  bodyLimitBytes?: number;
  /** Threads per onnxruntime op (default 1: runs block the event loop, and one thread leaves a core for I/O). */
  intraOpThreads?: number;
  /** How long close() waits for requests in flight before cancelling them (default 30 s). */
  shutdownTimeoutMs?: number;
  /** Most output values one /v2 infer request may ask for (default 4 Mi). */
  maxInferOutputElements?: number;
  log?: (message: string) => void;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:43121 */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /**
   * Serves `dir` (or the folder of that name in modelsDirectory) as `version` of `name` (default: the next one);
   * in-flight requests finish on the old one.
   */
  reload(name: string, dir?: string, version?: number): Promise<{ name: string; version: number }>;
  /** Stops accepting, lets requests in flight finish (up to shutdownTimeoutMs), releases the models. */
  close(): Promise<void>;
  /** The served models and how many old versions are still finishing. */
  status(): {
    models: { name: string; version: number; dir: string; queueDepth: number; active: number }[];
    retiring: number;
  };
}

const HEALTH_ROUTES = new Set(['/v2/health/live', '/v2/health/ready']);

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  if (options.apiKey !== undefined) checkApiKey(options.apiKey);
  if (!loopback && options.apiKey === undefined) {
    throw new Error(
      `binding ${host} exposes the models beyond this machine: give an API key (--api-key-file) or bind 127.0.0.1`,
    );
  }
  if (options.models.length === 0) throw new Error('no models to serve');
  const log = options.log ?? (() => {});
  const batching = options.batching ?? true;

  let closing = false;
  let started = false;
  const metrics: ServiceMetrics = new ServiceMetrics(() =>
    models.load().map((m) => ({ ...m, ready: started && !closing && models.get(m.name) !== undefined })),
  );
  const models: ModelSet = new ModelSet({
    maxBatchSize: batching ? (options.maxBatchSize ?? 32) : 1,
    maxQueue: options.maxQueue ?? 64,
    maxBatchTokens: options.maxBatchTokens,
    promptCachePositions: options.promptCachePositions,
    intraOpThreads: options.intraOpThreads ?? 1,
    metrics,
    log,
  });

  const classifiers = new ClassifierSet(options.intraOpThreads ?? 1);

  const resolveSource = (source: ModelSource): { name: string; dir: string; version?: number } => {
    if (typeof source !== 'string') {
      const name = checkModelName(source.name ?? nameForFolder(source.dir));
      return { name, dir: path.resolve(source.dir), version: source.version };
    }
    if (options.modelsDirectory && !source.includes('/') && !source.includes(path.sep)) {
      return { name: checkModelName(source), dir: resolveModelDir(options.modelsDirectory, source) };
    }
    return { name: nameForFolder(source), dir: path.resolve(source) };
  };

  try {
    const sources = options.models.map(resolveSource);
    const names = new Set<string>();
    for (const { name } of sources) {
      if (names.has(name)) throw new Error(`two models are named ${name}; name them with NAME=DIR`);
      names.add(name);
    }
    for (const { name, dir, version } of sources) {
      if (isClassifierFolder(dir)) {
        await classifiers.reload(name, dir, version);
        log(`loaded classifier ${name} from ${dir}`);
        continue;
      }
      await models.add(name, dir, version);
      log(`loaded ${name} from ${dir}`);
    }
  } catch (e) {
    await models.closeAll();
    await classifiers.closeAll();
    throw e;
  }

  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    requestTimeout: 120_000,
  });
  const context = new RouteContext(
    models,
    options.requestTimeoutMs ?? 60_000,
    options.maxInferOutputElements ?? 4 * 1024 * 1024,
    () => started && !closing,
  );

  const checkBearer = options.apiKey !== undefined ? bearerChecker(options.apiKey) : undefined;
  app.addHook('onRequest', async (request, reply) => {
    if (closing) {
      reply.header('connection', 'close');
      throw unavailable('the server is shutting down');
    }
    const route = request.url.split('?')[0];
    if (checkBearer) {
      if (!HEALTH_ROUTES.has(route) && !checkBearer(request.headers.authorization)) {
        reply.header('www-authenticate', 'Bearer');
        throw new HttpError(401, 'a valid API key is required: Authorization: Bearer KEY', 'authentication_error');
      }
    } else if (!isLoopbackHostHeader(request.headers.host)) {
      // Without a key only this machine may call, by a loopback name: refuses DNS-rebinding pages in a browser.
      throw new HttpError(
        403,
        `host ${JSON.stringify(request.headers.host ?? '')} is not a loopback name`,
        'authentication_error',
      );
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.latency.observe(reply.elapsedTime / 1000, { route });
  });

  app.setErrorHandler((error: FastifyError | HttpError | Error, request, reply) => {
    let http: HttpError;
    if (error instanceof HttpError) http = error;
    else if (
      'statusCode' in error &&
      typeof error.statusCode === 'number' &&
      error.statusCode >= 400 &&
      error.statusCode < 500
    ) {
      const type = error.statusCode === 413 ? 'payload_too_large' : 'invalid_request_error';
      const message =
        error.statusCode === 413
          ? `the request body is larger than ${options.bodyLimitBytes ?? 1024 * 1024} bytes`
          : error.statusCode === 415
            ? 'send the body as JSON with content-type: application/json'
            : error.message;
      http = new HttpError(error.statusCode, message, type);
    } else {
      log(
        `error on ${request.method} ${request.url}: ` +
          `${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      http = new HttpError(500, 'internal error');
    }
    if (http.status === 499 || reply.raw.destroyed) return reply.code(499).send(); // the client is gone
    return reply.code(http.status).type('application/json').send(errorBody(request.url, http));
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .type('application/json')
      .send(errorBody(request.url, new HttpError(404, `no route ${request.method} ${request.url.split('?')[0]}`)));
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.registry.render()),
  );
  registerClassifyRoutes(app, classifiers);
  registerOpenAiRoutes(app, context);
  registerInferenceRoutes(app, context);

  try {
    await app.listen({ host, port: options.port ?? 0 });
  } catch (e) {
    await models.closeAll();
    throw e;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  started = true;
  log(
    `serving ${models
      .list()
      .map((m) => m.name)
      .join(', ')} at ${url}${batching ? '' : ' (batching off)'}`,
  );

  // Requests between arrival and the end of their response (or the client going away), for the shutdown.
  let inFlight = 0;
  app.server.prependListener('request', (_request, response) => {
    inFlight++;
    response.once('close', () => inFlight--);
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      models.stopAccepting();
      const stopped = app.close(); // stops listening; resolves once every connection is closed
      const deadline = Date.now() + (options.shutdownTimeoutMs ?? 30_000);
      while (inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      if (inFlight > 0) {
        log(
          `shutdown: ${inFlight} requests still running after ${options.shutdownTimeoutMs ?? 30_000} ms are cancelled`,
        );
        models.cancelAll(unavailable('the server is shutting down'));
      }
      // Nothing is in flight: what is left are idle keep-alive connections and ones that never sent a request.
      app.server.closeAllConnections();
      await stopped;
      await models.closeAll();
      await classifiers.closeAll();
      log('server closed');
    })();
    return closed;
  };

  return {
    url,
    host,
    port,
    close,
    async reload(name, dir, version) {
      if (closing) throw new Error('the server is shutting down');
      checkModelName(name);
      const folder =
        dir !== undefined
          ? path.resolve(dir)
          : options.modelsDirectory
            ? resolveModelDir(options.modelsDirectory, name)
            : undefined;
      if (!folder) throw new Error(`reload ${name}: give the model folder`);
      if (classifiers.has(name) || isClassifierFolder(folder)) {
        const served = await classifiers.reload(name, folder, version);
        return { name: served.name, version: served.version };
      }
      const model = await models.reload(name, folder, version);
      return { name: model.name, version: model.version };
    },
    status() {
      const load = new Map(models.load().map((m) => [m.name, m]));
      return {
        models: models.list().map((m) => ({
          name: m.name,
          version: m.version,
          dir: m.dir,
          queueDepth: load.get(m.name)?.queueDepth ?? 0,
          active: load.get(m.name)?.active ?? 0,
        })),
        retiring: models.retiringCount,
      };
    },
  };
}

/** True when a Host header names this machine (localhost, 127.x.y.z or [::1], any port). */
function isLoopbackHostHeader(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const match = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(hostHeader.trim());
  return match !== null && isLoopbackHost(match[1]);
}
