// What the route modules share: the model set, model lookup by URL name (400 for an invalid name, 404 for an
// unknown one), readiness, and a per-request abort signal that fires on timeout or when the client goes away.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, badRequest, notFound } from './errors';
import type { ModelSet, ServedModel } from './modelSet';
import { isValidModelName } from '../protocol';
import type { InferLimits } from './tensorCodec';

export interface RequestAbort {
  signal: AbortSignal;
  /** Stops the timer and stops watching the connection. */
  dispose(): void;
}

export class RouteContext {
  constructor(
    readonly models: ModelSet,
    private readonly requestTimeoutMs: number,
    private readonly maxInferOutputElements: number,
    /** False while starting or shutting down. */
    readonly isReady: () => boolean,
  ) {}

  /** The current version of a model, by the name in a URL or request body. */
  model(name: string): ServedModel {
    if (!isValidModelName(name)) throw badRequest(`invalid model name ${JSON.stringify(name)}`, 'model');
    const model = this.models.get(name);
    if (!model) throw notFound(`model ${JSON.stringify(name)} is not served here; GET /v1/models lists the models`);
    return model;
  }

  /** Aborted after the request timeout (reason: a TimeoutError) or when the client closes the connection first. */
  requestSignal(request: FastifyRequest, reply: FastifyReply): RequestAbort {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('the request timed out', 'TimeoutError')),
      this.requestTimeoutMs,
    );
    const onClose = () => {
      if (!reply.raw.writableFinished)
        controller.abort(new HttpError(499, `the client closed the connection (${request.method} ${request.url})`));
    };
    reply.raw.on('close', onClose);
    return {
      signal: controller.signal,
      dispose: () => {
        clearTimeout(timer);
        reply.raw.off('close', onClose);
      },
    };
  }

  inferLimits(model: ServedModel): InferLimits {
    return {
      maxDimension: Math.max(model.decoder.config.contextLength, 64),
      maxOutputElements: this.maxInferOutputElements,
    };
  }
}
