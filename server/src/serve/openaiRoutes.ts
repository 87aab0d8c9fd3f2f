// OpenAI-compatible routes: GET /v1/models[/{id}] (with the context length) and POST /v1/completions: prompts as
// text or token ids, `n` choices each, `suffix` (fill-in-the-middle with the tokenizer's FIM tokens), `echo`,
// `logprobs` in the legacy shape (prompt tokens scored too with echo, also with max_tokens 0), stop sequences,
// seeds, penalties, streaming as server-sent events with the final usage chunk of `stream_options.include_usage`.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { fitPrompt } from '../runtime/promptWindow';
import { findFimTokens } from '../tokenizer/fimFormats';
import type { CompletionOutcome, GeneratedToken } from './batchScheduler';
import { registerChatRoutes } from './chatRoutes';
import { asHttpError, badRequest } from './errors';
import { type LegacyLogprobs, LegacyLogprobsBuilder, type ScoredToken, concatLegacy } from './logprobs';
import type { ServedModel } from './modelSet';
import { EventStream, batchRequests, checkSamplingForModel, checkTokenIds, modelFor, usageOf } from './openaiShared';
import { scorePrompt } from './promptScoring';
import { type CompletionParams, parseCompletionParams } from './requestParams';
import type { RouteContext } from './routeContext';
import { registerTokenizeRoutes } from './tokenizeRoutes';

export { parseCompletionParams } from './requestParams';

/** A prompt as it will run, and what echo shows of it. */
interface PreparedPrompt {
  ids: number[];
  text: string;
}

export function registerOpenAiRoutes(app: FastifyInstance, context: RouteContext): void {
  const modelJson = (model: ServedModel) => ({
    id: model.name,
    object: 'model',
    created: Math.floor(model.loadedAt.getTime() / 1000),
    owned_by: 'modelwright',
    max_model_len: model.decoder.config.contextLength,
    context_length: model.decoder.config.contextLength,
  });

  app.get('/v1/models', async () => ({ object: 'list', data: context.models.list().map(modelJson) }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => modelJson(context.model(request.params.id)));

  app.post('/v1/completions', async (request, reply) => {
    const params = parseCompletionParams(request.body);
    const model = modelFor(context, params.model);
    const { contextLength } = model.decoder.config;
    const maxTokens = params.maxTokens ?? 16;
    if (maxTokens >= contextLength)
      throw badRequest(`"max_tokens" must be below the model's context of ${contextLength} tokens`, 'max_tokens');
    checkSamplingForModel(model, params);
    const prompts = params.prompts.map((prompt) => preparePrompt(model, prompt, params, maxTokens));
    const choices = prompts.flatMap((prompt, p) =>
      Array.from({ length: params.n }, (_, j) => ({ promptIds: prompt.ids, index: p * params.n + j, prompt: p })),
    );

    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const header = {
      id,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: model.name,
      system_fingerprint: `${model.name}@${model.version}`,
    };
    const wantsLogprobs = params.logprobs !== undefined;
    const abort = context.requestSignal(request, reply);
    const scoring =
      params.echo && wantsLogprobs
        ? Promise.all(prompts.map((prompt) => scorePrompt(model, prompt.ids, params.logprobs!, abort.signal)))
        : Promise.resolve(prompts.map((): ScoredToken[] => []));
    scoring.catch(() => {}); // awaited below; a failure before then must not be unhandled

    /** The logprobs of a choice's echoed prompt, with a builder positioned after it for the completion. */
    const startLogprobs = (scores: ScoredToken[][], prompt: number) => {
      const builder = new LegacyLogprobsBuilder(model.tokenizer);
      const echoed = builder.add(scores[prompt]);
      return { builder, echoed, start: builder.position };
    };
    const generatedScores = (tokens: readonly GeneratedToken[] | undefined): ScoredToken[] =>
      (tokens ?? []).map((t) => ({ id: t.id, logprob: t.logprob, top: t.top }));

    if (!params.stream) {
      try {
        const outcomes: CompletionOutcome[] =
          maxTokens === 0
            ? choices.map((c) => ({
                text: '',
                finishReason: 'length',
                promptTokens: c.promptIds.length,
                completionTokens: 0,
              }))
            : await Promise.all(
                model.scheduler.complete(batchRequests(params, choices, maxTokens, params.logprobs, abort.signal)),
              );
        const scores = await scoring;
        return {
          ...header,
          choices: outcomes.map((outcome, index) => {
            const prompt = choices[index].prompt;
            let logprobs: LegacyLogprobs | null = null;
            if (wantsLogprobs) {
              const { builder, echoed, start } = startLogprobs(scores, prompt);
              const generated = builder.add(generatedScores(outcome.tokens), start + outcome.text.length);
              logprobs = params.echo ? concatLegacy([echoed, generated]) : generated;
            }
            return {
              text: (params.echo ? prompts[prompt].text : '') + outcome.text,
              index,
              logprobs,
              finish_reason: outcome.finishReason,
            };
          }),
          usage: usageOf(outcomes),
        };
      } catch (e) {
        throw asHttpError(e);
      } finally {
        abort.dispose();
      }
    }

    // Streaming: the scheduler throws 429/503 before anything is sent; after that, errors become an error event.
    const usageField = params.includeUsage ? { usage: null } : {};
    const builders = new Map<number, { builder: LegacyLogprobsBuilder; start: number; sent: number }>();
    let stream: EventStream | undefined;
    const chunk = (index: number, text: string, finishReason: string | null, logprobs: LegacyLogprobs | null) =>
      stream?.send({ ...header, choices: [{ text, index, logprobs, finish_reason: finishReason }], ...usageField });
    const logprobsSince = (
      index: number,
      tokens: readonly GeneratedToken[],
      textEnd?: number,
    ): LegacyLogprobs | null => {
      const state = builders.get(index);
      if (!state) return null;
      const fresh = tokens.slice(state.sent);
      state.sent = tokens.length;
      return state.builder.add(generatedScores(fresh), textEnd === undefined ? undefined : state.start + textEnd);
    };
    let pending: Promise<CompletionOutcome>[] = [];
    let scores: ScoredToken[][];
    try {
      // The echoed prompt (and its scores) comes first in the stream, so it is ready before generation starts.
      scores = await scoring;
      for (const choice of choices) {
        if (wantsLogprobs) {
          const { builder, start } = startLogprobs(scores, choice.prompt);
          builders.set(choice.index, { builder, start, sent: 0 });
        }
      }
      if (maxTokens > 0)
        pending = model.scheduler.complete(
          batchRequests(params, choices, maxTokens, params.logprobs, abort.signal, (index, text, tokens) =>
            chunk(index, text, null, logprobsSince(index, tokens)),
          ),
        );
    } catch (e) {
      abort.dispose();
      throw asHttpError(e);
    }
    stream = new EventStream(reply);
    const outcomes: CompletionOutcome[] = [];
    for (const choice of choices) {
      if (params.echo) {
        const echoed = wantsLogprobs ? new LegacyLogprobsBuilder(model.tokenizer).add(scores[choice.prompt]) : null;
        chunk(choice.index, prompts[choice.prompt].text, null, echoed);
      }
    }
    const streamed = (async () => {
      if (maxTokens === 0) {
        for (const choice of choices) {
          outcomes[choice.index] = {
            text: '',
            finishReason: 'length',
            promptTokens: choice.promptIds.length,
            completionTokens: 0,
          };
          chunk(choice.index, '', 'length', null);
        }
      }
      await Promise.all(
        pending.map((promise, index) =>
          promise.then((outcome) => {
            outcomes[index] = outcome;
            chunk(index, '', outcome.finishReason, logprobsSince(index, outcome.tokens ?? [], outcome.text.length));
          }),
        ),
      );
      if (params.includeUsage) stream.send({ ...header, choices: [], usage: usageOf(outcomes) });
    })();
    stream.endAfter(streamed, abort);
    return reply;
  });

  registerChatRoutes(app, context);
  registerTokenizeRoutes(app, context);
}

/** The ids to run for one prompt: its tokens (or the FIM arrangement of prompt and suffix), fitted to the context. */
function preparePrompt(
  model: ServedModel,
  prompt: string | number[],
  params: CompletionParams,
  maxTokens: number,
): PreparedPrompt {
  const { contextLength, bosTokenId } = model.decoder.config;
  const ids = typeof prompt === 'string' ? model.tokenizer.encode(prompt) : prompt;
  if (typeof prompt !== 'string') checkTokenIds(model, prompt, 'prompt');
  const text = typeof prompt === 'string' ? prompt : model.tokenizer.decode(prompt);
  const room = contextLength - maxTokens;

  if (params.suffix !== undefined) {
    const fim = findFimTokens((token) => model.tokenizer.tokenId(token));
    if (!fim)
      throw badRequest(
        `model ${model.name}'s tokenizer has no fill-in-the-middle tokens, so "suffix" is not supported`,
        'suffix',
      );
    // Prefix-suffix-middle order; what does not fit is cut from the far ends (the start of the prefix first).
    let suffixIds = model.tokenizer.encode(params.suffix);
    let prefixIds = ids;
    const budget = room - 3;
    if (budget < 1) throw badRequest('"max_tokens" leaves no room for a fill-in-the-middle prompt', 'max_tokens');
    if (prefixIds.length + suffixIds.length > budget) {
      const keepSuffix = Math.min(suffixIds.length, Math.max(Math.floor(budget / 4), budget - prefixIds.length));
      suffixIds = suffixIds.slice(0, keepSuffix);
      prefixIds = prefixIds.slice(Math.max(0, prefixIds.length - (budget - keepSuffix)));
    }
    return { ids: [fim.prefix, ...prefixIds, fim.suffix, ...suffixIds, fim.middle], text };
  }

  if (params.echo) {
    const run = ids.length ? ids : [bosTokenId];
    if (run.length + maxTokens > contextLength)
      throw badRequest(
        `the prompt has ${run.length} tokens; with "max_tokens" ${maxTokens} that exceeds the model's context of ` +
          `${contextLength} ("echo" scores the whole prompt, so it is not shortened)`,
        'prompt',
      );
    return { ids: run, text };
  }
  return { ids: fitPrompt(ids, maxTokens, contextLength, bosTokenId), text };
}
