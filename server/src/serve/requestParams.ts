// Validation of the OpenAI-compatible request bodies (/v1/completions and /v1/chat/completions): every known field
// is checked for its type and range, with a 400 that names it; unknown fields are ignored, as OpenAI's clients
// (and the tools built on them) expect. Limits that depend on the model (context, vocabulary) are checked by the routes.
import type { ChatMessage } from '../runtime/chatModel';
import type { LogitAdjustments } from './batchScheduler';
import { badRequest } from './errors';

export const REQUEST_LIMITS = {
  /** Prompts in one /v1/completions request. */
  prompts: 32,
  /** Choices per prompt (`n`). */
  n: 16,
  /** Choices in one request: prompts × n. */
  choices: 32,
  stops: 4,
  /** Characters of one stop sequence. */
  stopLength: 256,
  /** Alternatives per token (`logprobs`, `top_logprobs`). */
  logprobs: 20,
  logitBias: 300,
  messages: 512,
} as const;

/** What completions and chat share. */
export interface SamplingParams {
  model: string | undefined;
  /** undefined: the route's default (16 for completions, the rest of the context for chat). */
  maxTokens: number | undefined;
  /** The field maxTokens came from (max_tokens or max_completion_tokens), for error messages. */
  maxTokensKey: string;
  temperature: number;
  topP: number;
  topK: number;
  stop: string[];
  seed: number | undefined;
  n: number;
  stream: boolean;
  includeUsage: boolean;
  ignoreEos: boolean;
  /** Present only when a penalty or bias is set. */
  adjust: LogitAdjustments | undefined;
}

export interface CompletionParams extends SamplingParams {
  prompts: (string | number[])[];
  suffix: string | undefined;
  echo: boolean;
  /** Alternatives per token; undefined: no log probabilities. */
  logprobs: number | undefined;
}

export interface ChatParams extends SamplingParams {
  messages: ChatMessage[];
  /** Alternatives per token; undefined: no log probabilities. */
  logprobs: number | undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTokenArray = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((t) => Number.isSafeInteger(t));
const absent = (v: unknown): boolean => v === undefined || v === null;

/** Typed readers of a request body's fields; each throws a 400 naming the field. */
class Fields {
  constructor(readonly body: Record<string, unknown>) {}

  number(key: string, fallback: number, min: number, max: number, options: { openMin?: boolean } = {}): number {
    const value = this.body[key];
    if (absent(value)) return fallback;
    const inRange =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (options.openMin ? value > min : value >= min) &&
      value <= max;
    if (!inRange)
      throw badRequest(
        `"${key}" must be a number ${options.openMin ? 'above' : 'from'} ${min} ${options.openMin ? 'up to' : 'to'} ${max}`,
        key,
      );
    return value as number;
  }

  integer(key: string, min: number, max: number): number | undefined {
    const value = this.body[key];
    if (absent(value)) return undefined;
    if (!(Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max))
      throw badRequest(`"${key}" must be an integer from ${min} to ${max}`, key);
    return value as number;
  }

  boolean(key: string): boolean {
    const value = this.body[key];
    if (absent(value)) return false;
    if (typeof value !== 'boolean') throw badRequest(`"${key}" must be true or false`, key);
    return value;
  }

  string(key: string): string | undefined {
    const value = this.body[key];
    if (absent(value)) return undefined;
    if (typeof value !== 'string') throw badRequest(`"${key}" must be a string`, key);
    return value;
  }
}

function parseSampling(fields: Fields, maxTokensKeys: string[], minTokens: number): SamplingParams {
  const { body } = fields;
  const model = fields.string('model');
  fields.string('user'); // accepted and ignored, but it must be a string

  let maxTokens: number | undefined;
  let maxTokensKey = maxTokensKeys.at(-1)!;
  for (const key of maxTokensKeys) {
    if (maxTokens !== undefined) break;
    maxTokens = fields.integer(key, minTokens, 1_000_000);
    if (maxTokens !== undefined) maxTokensKey = key;
  }

  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop) && body.stop.every((s) => typeof s === 'string')) stop = body.stop as string[];
  else if (!absent(body.stop)) throw badRequest('"stop" must be a string or an array of strings', 'stop');
  if (stop.length > REQUEST_LIMITS.stops) throw badRequest(`at most ${REQUEST_LIMITS.stops} stop sequences`, 'stop');
  if (stop.some((s) => s.length > REQUEST_LIMITS.stopLength))
    throw badRequest(`a stop sequence may have at most ${REQUEST_LIMITS.stopLength} characters`, 'stop');

  const n = fields.integer('n', 1, REQUEST_LIMITS.n) ?? 1;
  if (!absent(body.best_of) && body.best_of !== n)
    throw badRequest('"best_of" must equal "n" (one sampled sequence per choice)', 'best_of');

  const stream = fields.boolean('stream');
  const streamOptions = body.stream_options;
  if (!absent(streamOptions)) {
    if (!isObject(streamOptions)) throw badRequest('"stream_options" must be an object', 'stream_options');
    if (!stream) throw badRequest('"stream_options" is only allowed with "stream": true', 'stream_options');
    if (!absent(streamOptions.include_usage) && typeof streamOptions.include_usage !== 'boolean')
      throw badRequest('"stream_options.include_usage" must be true or false', 'stream_options');
  }

  const presencePenalty = fields.number('presence_penalty', 0, -2, 2);
  const frequencyPenalty = fields.number('frequency_penalty', 0, -2, 2);
  const logitBias = new Map<number, number>();
  if (!absent(body.logit_bias)) {
    if (!isObject(body.logit_bias))
      throw badRequest('"logit_bias" must be an object of token ids to numbers from -100 to 100', 'logit_bias');
    const entries = Object.entries(body.logit_bias);
    if (entries.length > REQUEST_LIMITS.logitBias)
      throw badRequest(`"logit_bias" may have at most ${REQUEST_LIMITS.logitBias} entries`, 'logit_bias');
    for (const [key, bias] of entries) {
      if (!/^\d{1,9}$/.test(key))
        throw badRequest(`"logit_bias" key ${JSON.stringify(key)} is not a token id`, 'logit_bias');
      if (!(typeof bias === 'number' && bias >= -100 && bias <= 100))
        throw badRequest(`"logit_bias" values must be numbers from -100 to 100`, 'logit_bias');
      logitBias.set(Number(key), bias);
    }
  }

  return {
    model,
    maxTokens,
    maxTokensKey,
    temperature: fields.number('temperature', 1, 0, 2),
    topP: fields.number('top_p', 1, 0, 1, { openMin: true }),
    topK: Math.max(0, fields.integer('top_k', -1, 1_000_000) ?? 0),
    stop: stop.filter((s) => s.length > 0),
    seed: fields.integer('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    n,
    stream,
    includeUsage: isObject(streamOptions) && streamOptions.include_usage === true,
    ignoreEos: fields.boolean('ignore_eos'),
    adjust:
      presencePenalty !== 0 || frequencyPenalty !== 0 || logitBias.size > 0
        ? { presencePenalty, frequencyPenalty, logitBias }
        : undefined,
  };
}

export function parseCompletionParams(body: unknown): CompletionParams {
  if (!isObject(body)) throw badRequest('the request body must be a JSON object');
  const fields = new Fields(body);
  const sampling = parseSampling(fields, ['max_tokens'], 0);

  let prompts: (string | number[])[];
  const prompt = body.prompt ?? '';
  if (typeof prompt === 'string' || isTokenArray(prompt)) prompts = [prompt];
  else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((p) => typeof p === 'string' || isTokenArray(p)))
    prompts = prompt as (string | number[])[];
  else
    throw badRequest(
      '"prompt" must be a string, an array of strings, an array of token ids or an array of those',
      'prompt',
    );
  if (prompts.length > REQUEST_LIMITS.prompts)
    throw badRequest(`at most ${REQUEST_LIMITS.prompts} prompts per request`, 'prompt');
  if (prompts.length * sampling.n > REQUEST_LIMITS.choices)
    throw badRequest(`at most ${REQUEST_LIMITS.choices} choices (prompts × n) per request`, 'n');

  const logprobs = body.logprobs === false ? undefined : fields.integer('logprobs', 0, REQUEST_LIMITS.logprobs);
  const echo = fields.boolean('echo');
  const suffix = fields.string('suffix') || undefined;
  if (suffix !== undefined && echo) throw badRequest('"echo" cannot be combined with "suffix"', 'echo');
  return { ...sampling, prompts, suffix, echo, logprobs };
}

const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant']);

export function parseChatParams(body: unknown): ChatParams {
  if (!isObject(body)) throw badRequest('the request body must be a JSON object');
  const fields = new Fields(body);
  const sampling = parseSampling(fields, ['max_completion_tokens', 'max_tokens'], 1);

  if (!Array.isArray(body.messages) || body.messages.length === 0)
    throw badRequest('"messages" must be a non-empty array of {"role", "content"}', 'messages');
  if (body.messages.length > REQUEST_LIMITS.messages)
    throw badRequest(`at most ${REQUEST_LIMITS.messages} messages per request`, 'messages');
  const messages = body.messages.map((raw, index): ChatMessage => {
    const where = `messages[${index}]`;
    if (!isObject(raw)) throw badRequest(`${where} must be an object with "role" and "content"`, 'messages');
    if (typeof raw.role !== 'string' || !CHAT_ROLES.has(raw.role))
      throw badRequest(
        `${where}.role must be one of ${[...CHAT_ROLES].join(', ')}${raw.role === 'tool' ? ' (tools are not supported)' : ''}`,
        'messages',
      );
    let content: string;
    if (typeof raw.content === 'string') content = raw.content;
    else if (raw.content === null && raw.role === 'assistant') content = '';
    else if (Array.isArray(raw.content)) {
      content = raw.content
        .map((part, p) => {
          if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string')
            throw badRequest(
              `${where}.content[${p}] must be {"type": "text", "text": "..."}: only text is supported`,
              'messages',
            );
          return part.text;
        })
        .join('');
    } else throw badRequest(`${where}.content must be a string or an array of text parts`, 'messages');
    const role = raw.role === 'developer' ? 'system' : (raw.role as ChatMessage['role']);
    return { role, content };
  });

  if (Array.isArray(body.tools) && body.tools.length > 0 && body.tool_choice !== 'none')
    throw badRequest('tools (function calling) are not supported', 'tools');
  if (!absent(body.response_format)) {
    const format = body.response_format;
    if (!isObject(format) || format.type !== 'text')
      throw badRequest('"response_format" supports only {"type": "text"}', 'response_format');
  }
  const logprobs = fields.boolean('logprobs');
  const topLogprobs = fields.integer('top_logprobs', 0, REQUEST_LIMITS.logprobs);
  if (topLogprobs !== undefined && !logprobs) throw badRequest('"top_logprobs" needs "logprobs": true', 'top_logprobs');
  return { ...sampling, messages, logprobs: logprobs ? (topLogprobs ?? 0) : undefined };
}
