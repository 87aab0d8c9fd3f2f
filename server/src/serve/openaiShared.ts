// What the OpenAI-compatible completion and chat routes share: the model a request names (or the first one),
// checks that need the model (token ids, context room), the scheduler requests for a set of choices, usage
// counts, and server-sent events with OpenAI's framing.
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { BatchRequest, CompletionOutcome, GeneratedToken } from './batchScheduler';
import { asHttpError, badRequest, errorBody, notFound } from './errors';
import type { ServedModel } from './modelSet';
import type { SamplingParams } from './requestParams';
import type { RouteContext } from './routeContext';

export function modelFor(context: RouteContext, name: string | undefined): ServedModel {
  const chosen = name ?? context.models.list()[0]?.name;
  if (chosen === undefined) throw notFound('no model is loaded');
  return context.model(chosen);
}

/** Token ids given by the client must be in the vocabulary. */
export function checkTokenIds(model: ServedModel, ids: readonly number[], param: string): void {
  const { vocabSize } = model.decoder.config;
  if (ids.some((id) => id < 0 || id >= vocabSize)) throw badRequest(`token ids must be in 0..${vocabSize - 1}`, param);
}

/** Checks what depends on the model: logit_bias ids. */
export function checkSamplingForModel(model: ServedModel, params: SamplingParams): void {
  if (params.adjust) checkTokenIds(model, [...params.adjust.logitBias.keys()], 'logit_bias');
}

export interface ChoiceSpec {
  promptIds: number[];
  /** Choice index, also added to the seed so that n choices differ but repeat across requests. */
  index: number;
}

export function batchRequests(
  params: SamplingParams,
  choices: readonly ChoiceSpec[],
  maxTokens: number,
  logprobs: number | undefined,
  signal: AbortSignal,
  onText?: (index: number, text: string, tokens: readonly GeneratedToken[]) => void,
): BatchRequest[] {
  return choices.map(({ promptIds, index }) => ({
    promptIds,
    maxTokens,
    sampling: {
      temperature: params.temperature,
      topP: params.topP,
      topK: params.topK,
      seed: params.seed === undefined ? undefined : params.seed + index,
    },
    stops: params.stop,
    ignoreEos: params.ignoreEos,
    signal,
    logprobs,
    adjust: params.adjust,
    onText: onText && ((text, tokens) => onText(index, text, tokens)),
  }));
}

export function usageOf(outcomes: readonly Pick<CompletionOutcome, 'promptTokens' | 'completionTokens'>[]) {
  const prompt = outcomes.reduce((n, o) => n + o.promptTokens, 0);
  const completion = outcomes.reduce((n, o) => n + o.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A server-sent events response: JSON events, then `data: [DONE]`. */
export class EventStream {
  private readonly stream = new PassThrough();

  constructor(private readonly reply: FastifyReply) {
    this.stream.on('error', () => {}); // a client that went away: the request's abort signal ends the work
    reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-accel-buffering', 'no');
    void reply.send(this.stream);
  }

  get clientGone(): boolean {
    return this.reply.raw.destroyed;
  }

  send(event: object): void {
    this.stream.write(`data: ${JSON.stringify(event)}\n\n`);
  }

  end(): void {
    this.stream.end('data: [DONE]\n\n');
  }

  /**
   * Ends the stream once `work` (which sends the events) settles: a failure becomes an error event while the client
   * is still there, then the request's abort handle is released and `[DONE]` is sent.
   */
  endAfter(work: Promise<unknown>, abort: { dispose(): void }): void {
    work
      .catch((e: unknown) => {
        if (!this.clientGone) this.send(errorBody('/v1', asHttpError(e)));
      })
      .finally(() => {
        abort.dispose();
        this.end();
      });
  }
}
