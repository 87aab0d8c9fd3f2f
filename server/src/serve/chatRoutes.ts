// POST /v1/chat/completions: the messages rendered with the model's own chat template (a clear 400 for a model
// without one), then decoded like a completion: `n` choices, stop sequences, seeds, penalties, `logprobs` with
// `top_logprobs` in chat's shape, and streaming as chat.completion.chunk events with `include_usage`'s final chunk.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { CompletionOutcome, GeneratedToken } from './batchScheduler';
import { asHttpError, badRequest } from './errors';
import { chatLogprobs } from './logprobs';
import type { ServedModel } from './modelSet';
import { EventStream, batchRequests, checkSamplingForModel, modelFor, usageOf } from './openaiShared';
import { parseChatParams } from './requestParams';
import type { RouteContext } from './routeContext';

export function registerChatRoutes(app: FastifyInstance, context: RouteContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const params = parseChatParams(request.body);
    const model = modelFor(context, params.model);
    if ('unavailable' in model.chat) throw badRequest(model.chat.unavailable, 'model');
    checkSamplingForModel(model, params);
    let promptText: string;
    try {
      promptText = model.chat.render(params.messages);
    } catch (e) {
      throw badRequest(
        `the chat template refused these messages: ${e instanceof Error ? e.message : String(e)}`,
        'messages',
      );
    }
    const promptIds = model.tokenizer.encode(promptText);
    const { contextLength } = model.decoder.config;
    const room = contextLength - promptIds.length;
    if (room < 1)
      throw badRequest(
        `the messages come to ${promptIds.length} tokens, the model's context is ${contextLength}`,
        'messages',
      );
    const maxTokens = params.maxTokens ?? room;
    if (maxTokens > room)
      throw badRequest(
        `"${params.maxTokensKey}" is ${maxTokens} but the messages (${promptIds.length} tokens) leave ${room} of the context`,
        params.maxTokensKey,
      );
    const choices = Array.from({ length: params.n }, (_, index) => ({ promptIds, index }));
    const header = {
      id: `chatcmpl-${randomBytes(12).toString('hex')}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: model.name,
      system_fingerprint: `${model.name}@${model.version}`,
    };
    const wantsLogprobs = params.logprobs !== undefined;
    const logprobsOf = (tokens: readonly GeneratedToken[]) =>
      wantsLogprobs ? { content: chatLogprobs(model.tokenizer, tokens), refusal: null } : null;
    const abort = context.requestSignal(request, reply);

    if (!params.stream) {
      try {
        const outcomes = await Promise.all(
          model.scheduler.complete(batchRequests(params, choices, maxTokens, params.logprobs, abort.signal)),
        );
        return {
          ...header,
          choices: outcomes.map((outcome, index) => ({
            index,
            message: { role: 'assistant', content: outcome.text, refusal: null },
            logprobs: logprobsOf(keptTokens(model, outcome)),
            finish_reason: outcome.finishReason,
          })),
          usage: usageOf(outcomes),
        };
      } catch (e) {
        throw asHttpError(e);
      } finally {
        abort.dispose();
      }
    }

    const chunkHeader = { ...header, object: 'chat.completion.chunk', ...(params.includeUsage ? { usage: null } : {}) };
    const sent = new Map<number, number>();
    let stream: EventStream | undefined;
    const chunk = (index: number, delta: object, finishReason: string | null, tokens: readonly GeneratedToken[]) => {
      const from = sent.get(index) ?? 0;
      sent.set(index, tokens.length);
      stream?.send({
        ...chunkHeader,
        choices: [{ index, delta, logprobs: logprobsOf(tokens.slice(from)), finish_reason: finishReason }],
      });
    };
    let pending: Promise<CompletionOutcome>[];
    try {
      pending = model.scheduler.complete(
        batchRequests(params, choices, maxTokens, params.logprobs, abort.signal, (index, text, tokens) =>
          chunk(index, { content: text }, null, tokens),
        ),
      );
    } catch (e) {
      abort.dispose();
      throw asHttpError(e);
    }
    stream = new EventStream(reply);
    for (const { index } of choices) chunk(index, { role: 'assistant', content: '' }, null, []);
    const outcomes: CompletionOutcome[] = [];
    const streamed = Promise.all(
      pending.map((promise, index) =>
        promise.then((outcome) => {
          outcomes[index] = outcome;
          chunk(index, {}, outcome.finishReason, keptTokens(model, outcome));
        }),
      ),
    ).then(() => {
      if (params.includeUsage) stream.send({ ...chunkHeader, choices: [], usage: usageOf(outcomes) });
    });
    stream.endAfter(streamed, abort);
    return reply;
  });
}

/** The generated tokens that make up the text: those of a stop sequence are left out. */
function keptTokens(model: ServedModel, outcome: CompletionOutcome): readonly GeneratedToken[] {
  const tokens = outcome.tokens ?? [];
  if (outcome.finishReason !== 'stop') return tokens;
  let length = 0;
  let kept = 0;
  const decoded = tokens.map((t) => t.id);
  // Keep tokens while the text they start at lies inside the returned text.
  while (kept < tokens.length && length < outcome.text.length) {
    kept++;
    length = model.tokenizer.decode(decoded.slice(0, kept)).length;
  }
  return tokens.slice(0, kept);
}
