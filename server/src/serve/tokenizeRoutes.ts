// The tokenizer over HTTP, in vLLM's shapes (what lm-evaluation-harness's remote tokenizer calls): POST /tokenize
// (a prompt or chat messages → token ids), POST /detokenize (ids → text) and GET /tokenizer_info (special tokens
// and the chat template). "model" is optional: the first model answers.
import type { FastifyInstance } from 'fastify';
import { readChatTemplate, readSpecialTokens } from '../runtime/chatModel';
import { badRequest } from './errors';
import { checkTokenIds, modelFor } from './openaiShared';
import { parseChatParams } from './requestParams';
import type { RouteContext } from './routeContext';

/** Most token ids one /detokenize request may send. */
const MAX_DETOKENIZE = 1_000_000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function registerTokenizeRoutes(app: FastifyInstance, context: RouteContext): void {
  const modelOf = (body: Record<string, unknown>) => {
    if (body.model !== undefined && body.model !== null && typeof body.model !== 'string')
      throw badRequest('"model" must be a string', 'model');
    return modelFor(context, (body.model as string | undefined) ?? undefined);
  };

  app.post('/tokenize', async (request) => {
    const body = request.body;
    if (!isObject(body)) throw badRequest('the request body must be a JSON object');
    const model = modelOf(body);
    for (const key of ['add_special_tokens', 'add_generation_prompt'])
      if (body[key] !== undefined && typeof body[key] !== 'boolean')
        throw badRequest(`"${key}" must be true or false`, key);
    let text: string;
    if (body.messages !== undefined) {
      const { messages } = parseChatParams({ messages: body.messages });
      if ('unavailable' in model.chat) throw badRequest(model.chat.unavailable, 'model');
      try {
        text = model.chat.render(messages);
      } catch (e) {
        throw badRequest(
          `the chat template refused these messages: ${e instanceof Error ? e.message : String(e)}`,
          'messages',
        );
      }
    } else if (typeof body.prompt === 'string') text = body.prompt;
    else throw badRequest('give "prompt" (a string) or "messages"', 'prompt');
    const tokens = model.tokenizer.encode(text);
    const { contextLength } = model.decoder.config;
    return { count: tokens.length, max_model_len: contextLength, tokens };
  });

  app.post('/detokenize', async (request) => {
    const body = request.body;
    if (!isObject(body)) throw badRequest('the request body must be a JSON object');
    const model = modelOf(body);
    const tokens = body.tokens;
    if (!Array.isArray(tokens) || tokens.length > MAX_DETOKENIZE || !tokens.every((t) => Number.isSafeInteger(t)))
      throw badRequest(`"tokens" must be an array of at most ${MAX_DETOKENIZE} token ids`, 'tokens');
    checkTokenIds(model, tokens as number[], 'tokens');
    return { prompt: model.tokenizer.decode(tokens as number[]) };
  });

  app.get<{ Querystring: { model?: string } }>('/tokenizer_info', async (request) => {
    const model = modelFor(context, request.query.model || undefined);
    const special = readSpecialTokens(model.dir);
    return {
      tokenizer_class: special.tokenizer_class ?? null,
      bos_token: special.bos_token ?? null,
      eos_token: special.eos_token ?? null,
      pad_token: special.pad_token ?? null,
      unk_token: special.unk_token ?? null,
      chat_template: readChatTemplate(model.dir) ?? null,
      model_max_length: model.decoder.config.contextLength,
      vocab_size: model.decoder.config.vocabSize,
    };
  });
}
