// OpenAI-compatible routes: GET /v1/models, GET /v1/models/{id} and POST /v1/completions (prompt, max_tokens,
// temperature, top_p, stop, seed, stream as server-sent events, usage counts; vLLM's ignore_eos). Requests are
// validated by hand, so every malformed field gets a 400 that names it.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CompletionOutcome, BatchRequest } from './batchScheduler';
import { fitPrompt } from '../runtime/promptWindow';
import { asHttpError, badRequest, errorBody, notFound } from './errors';
import type { ServedModel } from './modelSet';
import type { RouteContext } from './routeContext';

/** A completion request after validation. */
export interface CompletionParams {
  model: string | undefined;
  prompts: (string | number[])[];
  maxTokens: number;
  temperature: number;
  topP: number;
  stop: string[];
  seed: number | undefined;
  stream: boolean;
  includeUsage: boolean;
  ignoreEos: boolean;
}

const MAX_PROMPTS = 16;
const MAX_STOPS = 4;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTokenArray = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t));

export function parseCompletionParams(body: unknown): CompletionParams {
  if (!isObject(body)) throw badRequest('the request body must be a JSON object');
  const optionalNumber = (key: string, fallback: number, check: (n: number) => boolean, what: string): number => {
    const value = body[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !check(value)) throw badRequest(`"${key}" must be ${what}`, key);
    return value;
  };
  const model = body.model;
  if (model !== undefined && typeof model !== 'string') throw badRequest('"model" must be a string', 'model');

  let prompts: (string | number[])[];
  const prompt = body.prompt ?? '';
  if (typeof prompt === 'string') prompts = [prompt];
  else if (isTokenArray(prompt)) prompts = [prompt];
  else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((p) => typeof p === 'string' || isTokenArray(p)))
    prompts = prompt as (string | number[])[];
  else
    throw badRequest(
      '"prompt" must be a string, an array of strings, an array of token ids or an array of those',
      'prompt',
    );
  if (prompts.length > MAX_PROMPTS) throw badRequest(`at most ${MAX_PROMPTS} prompts per request`, 'prompt');

  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop) && body.stop.every((s) => typeof s === 'string')) stop = body.stop as string[];
  else if (body.stop !== undefined && body.stop !== null)
    throw badRequest('"stop" must be a string or an array of strings', 'stop');
  if (stop.length > MAX_STOPS) throw badRequest(`at most ${MAX_STOPS} stop sequences`, 'stop');

  const n = optionalNumber('n', 1, (v) => v === 1, '1 (one choice per prompt)');
  void n;
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== 1)
    throw badRequest('"best_of" is not supported', 'best_of');
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== 0)
    throw badRequest('"logprobs" is not supported', 'logprobs');
  if (body.echo === true) throw badRequest('"echo" is not supported', 'echo');
  if (typeof body.suffix === 'string' && body.suffix.length > 0)
    throw badRequest(
      '"suffix" is not supported; build the prompt with the model\'s fill-in-the-middle tokens instead',
      'suffix',
    );
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
    throw badRequest('"stream" must be a boolean', 'stream');
  if (body.ignore_eos !== undefined && typeof body.ignore_eos !== 'boolean')
    throw badRequest('"ignore_eos" must be a boolean', 'ignore_eos');
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !isObject(streamOptions))
    throw badRequest('"stream_options" must be an object', 'stream_options');

  return {
    model,
    prompts,
    maxTokens: optionalNumber('max_tokens', 16, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
    temperature: optionalNumber('temperature', 1, (v) => v >= 0 && v <= 2, 'a number from 0 to 2'),
    topP: optionalNumber('top_p', 1, (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    stop,
    seed:
      body.seed === undefined || body.seed === null
        ? undefined
        : optionalNumber('seed', 0, (v) => Number.isSafeInteger(v), 'an integer'),
    stream: body.stream === true,
    includeUsage: isObject(streamOptions) && streamOptions.include_usage === true,
    ignoreEos: body.ignore_eos === true,
  };
}

export function registerOpenAiRoutes(app: FastifyInstance, context: RouteContext): void {
  const modelJson = (model: ServedModel) => ({
    id: model.name,
    object: 'model',
    created: Math.floor(model.loadedAt.getTime() / 1000),
    owned_by: 'modelwright',
    max_model_len: model.decoder.config.contextLength,
  });

  app.get('/v1/models', async () => ({ object: 'list', data: context.models.list().map(modelJson) }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => modelJson(context.model(request.params.id)));

  app.post('/v1/completions', async (request, reply) => {
    const params = parseCompletionParams(request.body);
    const name = params.model ?? context.models.list()[0]?.name;
    if (name === undefined) throw notFound('no model is loaded');
    const model = context.model(name);
    const { contextLength, bosTokenId, vocabSize } = model.decoder.config;
    if (params.maxTokens >= contextLength)
      throw badRequest(`"max_tokens" must be below the model's context of ${contextLength} tokens`, 'max_tokens');
    const promptIds = params.prompts.map((p) => {
      if (typeof p !== 'string' && p.some((id) => id < 0 || id >= vocabSize))
        throw badRequest(`prompt token ids must be in 0..${vocabSize - 1}`, 'prompt');
      return fitPrompt(
        typeof p === 'string' ? model.tokenizer.encode(p) : p,
        params.maxTokens,
        contextLength,
        bosTokenId,
      );
    });

    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const header = {
      id,
      object: 'text_completion',
      created,
      model: model.name,
      system_fingerprint: `${model.name}@${model.version}`,
    };
    const usageOf = (outcomes: CompletionOutcome[]) => {
      const prompt = outcomes.reduce((n, o) => n + o.promptTokens, 0);
      const completion = outcomes.reduce((n, o) => n + o.completionTokens, 0);
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    };

    if (params.maxTokens === 0) {
      const outcomes: CompletionOutcome[] = promptIds.map((ids) => ({
        text: '',
        finishReason: 'length',
        promptTokens: ids.length,
        completionTokens: 0,
      }));
      const choices = outcomes.map((o, index) => ({ text: '', index, logprobs: null, finish_reason: o.finishReason }));
      if (!params.stream) return { ...header, choices, usage: usageOf(outcomes) };
      const stream = sse(reply);
      stream.write(`data: ${JSON.stringify({ ...header, choices, usage: usageOf(outcomes) })}\n\n`);
      stream.end('data: [DONE]\n\n');
      return reply;
    }

    const abort = context.requestSignal(request, reply);
    const requests = (onText?: (index: number, text: string) => void): BatchRequest[] =>
      promptIds.map((ids, index) => ({
        promptIds: ids,
        maxTokens: params.maxTokens,
        sampling: {
          temperature: params.temperature,
          topP: params.topP,
          seed: params.seed === undefined ? undefined : params.seed + index,
        },
        stops: params.stop,
        ignoreEos: params.ignoreEos,
        signal: abort.signal,
        onText: onText && ((text) => onText(index, text)),
      }));

    if (!params.stream) {
      try {
        const outcomes = await Promise.all(model.scheduler.complete(requests()));
        const choices = outcomes.map((o, index) => ({
          text: o.text,
          index,
          logprobs: null,
          finish_reason: o.finishReason,
        }));
        return { ...header, choices, usage: usageOf(outcomes) };
      } catch (e) {
        throw asHttpError(e);
      } finally {
        abort.dispose();
      }
    }

    // Streaming: the scheduler throws 429/503 before anything is sent; after that, errors become an error event.
    let stream: PassThrough | undefined;
    const chunk = (index: number, text: string, finishReason: string | null, extra: object = {}) => {
      const choices = [{ text, index, logprobs: null, finish_reason: finishReason }];
      return stream?.write(`data: ${JSON.stringify({ ...header, choices, ...extra })}\n\n`);
    };
    const pending = model.scheduler.complete(requests((index, text) => chunk(index, text, null)));
    stream = sse(reply);
    const outcomes: CompletionOutcome[] = [];
    let remaining = pending.length;
    const finished = pending.map((promise, index) =>
      promise.then((outcome) => {
        outcomes[index] = outcome;
        remaining--;
        chunk(index, '', outcome.finishReason, remaining === 0 ? { usage: usageOf(outcomes) } : {});
      }),
    );
    Promise.all(finished)
      .then(() => {
        if (params.includeUsage)
          stream!.write(`data: ${JSON.stringify({ ...header, choices: [], usage: usageOf(outcomes) })}\n\n`);
      })
      .catch((e: unknown) => {
        const error = asHttpError(e);
        if (!reply.raw.destroyed) stream!.write(`data: ${JSON.stringify(errorBody('/v1', error))}\n\n`);
      })
      .finally(() => {
        abort.dispose();
        stream!.end('data: [DONE]\n\n');
      });
    return reply;
  });
}

/** Starts a server-sent events response and returns the stream to write events to. */
function sse(reply: FastifyReply): PassThrough {
  const stream = new PassThrough();
  stream.on('error', () => {}); // a client that went away: the request's abort signal ends the work
  reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no');
  void reply.send(stream);
  return stream;
}
