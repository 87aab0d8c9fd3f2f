// A client for a remote model server, so the completion and explanation roles can use a model too large for the
// laptop: OpenAI-compatible /v1/completions and /v1/chat/completions (vLLM, TGI, Ollama, llama.cpp, ours; streamed
// or not), or the Open Inference Protocol's /v2/models/{name}/infer (Triton, KServe, ours), decoding locally with
// the model folder's tokenizer (and its chat template for chats).
import { type ChatMessage, type ChatTemplate, loadChatTemplate } from '../runtime/chatModel';
import { readFolderConfig } from '../modelFolder/config';
import { Sampler, argmax } from '../runtime/sampling';
import { type Tokenizer, loadTokenizer } from '../runtime/tokenizer';
import { fitPrompt } from '../runtime/promptWindow';
import { CompletionText } from '../runtime/completionText';

export interface RemoteEndpoint {
  /** Base URL of the server, e.g. http://127.0.0.1:8000 (a trailing /v1 or /v2 is fine). */
  url: string;
  protocol: 'openai' | 'oip';
  /** Model name on the server. */
  model: string;
  /** Sent as `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Per HTTP call (default 60 s). */
  timeoutMs?: number;
  /**
   * For 'oip': a local model folder with the served model's tokenizer and config.json (the server only runs tensors).
   */
  modelDir?: string;
}

export interface RemoteCompletionOptions {
  maxTokens?: number;
  /** 0 (default) is greedy. */
  temperature?: number;
  topP?: number;
  stop?: readonly string[];
  seed?: number;
  signal?: AbortSignal;
  /** Streams text as it arrives (OpenAI: stream: true). */
  onText?: (text: string) => void;
  /** The text after the insertion point (OpenAI `suffix`, for fill-in-the-middle; not every server takes it). */
  suffix?: string;
}

export interface RemoteCompletion {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens?: number;
  completionTokens?: number;
}

/** An HTTP error from the remote server, with its status and message. */
export class RemoteError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface InferTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

/** True when an error means the server does not offer a route or field (rather than that it is down). */
export function isUnsupported(error: unknown): boolean {
  return error instanceof RemoteError && [400, 404, 405, 422, 501].includes(error.status);
}

export class RemoteClient {
  private readonly base: string;
  private tokenizer: Tokenizer | undefined;
  private chatTemplate: Promise<ChatTemplate | undefined> | undefined;
  /** The server refused a chat request as unsupported: chats go to /v1/completions as a transcript. */
  private withoutChat = false;
  private metadata: Promise<{ inputs: InferTensor[]; outputs: InferTensor[] }> | undefined;

  constructor(readonly endpoint: RemoteEndpoint) {
    const url = new URL(endpoint.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`${endpoint.url}: only http and https endpoints are supported`);
    if (url.username || url.password)
      throw new Error('the endpoint URL cannot carry a user name or password: set the API key instead');
    this.base = endpoint.url.replace(/\/+$/, '').replace(/\/v[12]$/, '');
    if (endpoint.protocol === 'oip' && !endpoint.modelDir)
      throw new Error('an Open Inference Protocol endpoint needs modelDir (the tokenizer to decode with)');
  }

  /** Model names the server lists. */
  async models(signal?: AbortSignal): Promise<string[]> {
    if (this.endpoint.protocol === 'openai') {
      const body = (await this.call('GET', '/v1/models', undefined, signal)) as { data?: { id: string }[] };
      return (body.data ?? []).map((m) => m.id);
    }
    await this.call('GET', `/v2/models/${encodeURIComponent(this.endpoint.model)}`, undefined, signal);
    return [this.endpoint.model];
  }

  async complete(prompt: string, options: RemoteCompletionOptions = {}): Promise<RemoteCompletion> {
    return this.endpoint.protocol === 'openai'
      ? this.completeOpenAi(prompt, options)
      : this.completeInfer(prompt, options);
  }

  /**
   * The assistant's next turn: OpenAI-compatible /v1/chat/completions (a server or model without chat gets the
   * messages as a plain transcript on /v1/completions), or for 'oip' the messages rendered with the chat template
   * of modelDir (a plain transcript when it has none) and decoded with /v2 infer.
   */
  async chat(messages: readonly ChatMessage[], options: RemoteCompletionOptions = {}): Promise<RemoteCompletion> {
    if (this.endpoint.protocol === 'openai' && !this.withoutChat) {
      try {
        return await this.chatOpenAi(messages, options);
      } catch (error) {
        if (!isUnsupported(error) || options.signal?.aborted) throw error;
        this.withoutChat = true;
      }
    }
    if (this.endpoint.protocol === 'openai') return this.completeOpenAi(transcript(messages), options);
    this.chatTemplate ??= loadChatTemplate(this.endpoint.modelDir!);
    const template = await this.chatTemplate;
    return this.completeInfer(template ? template.render(messages) : transcript(messages), options);
  }

  private async chatOpenAi(
    messages: readonly ChatMessage[],
    options: RemoteCompletionOptions,
  ): Promise<RemoteCompletion> {
    const body = {
      model: this.endpoint.model,
      messages,
      max_tokens: options.maxTokens ?? 256,
      temperature: options.temperature ?? 0,
      top_p: options.topP ?? 1,
      ...(options.stop?.length ? { stop: options.stop } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.onText ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
    if (!options.onText) {
      const result = (await this.call('POST', '/v1/chat/completions', body, options.signal)) as {
        choices: { message?: { content?: string | null }; finish_reason: string }[];
        usage?: { prompt_tokens: number; completion_tokens: number };
      };
      const choice = result.choices?.[0];
      if (!choice) throw new RemoteError(502, 'the server answered without a choice');
      return {
        text: choice.message?.content ?? '',
        finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
        promptTokens: result.usage?.prompt_tokens,
        completionTokens: result.usage?.completion_tokens,
      };
    }
    const response = await this.fetch('POST', '/v1/chat/completions', body, options.signal);
    return readEventStream(response, options.onText, (choice) => choice.delta?.content);
  }

  dispose(): void {
    this.tokenizer?.dispose();
    this.tokenizer = undefined;
  }

  private async completeOpenAi(prompt: string, options: RemoteCompletionOptions): Promise<RemoteCompletion> {
    const body = {
      model: this.endpoint.model,
      prompt,
      max_tokens: options.maxTokens ?? 64,
      temperature: options.temperature ?? 0,
      top_p: options.topP ?? 1,
      ...(options.stop?.length ? { stop: options.stop } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.suffix ? { suffix: options.suffix } : {}),
      ...(options.onText ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
    if (!options.onText) {
      const result = (await this.call('POST', '/v1/completions', body, options.signal)) as {
        choices: { text: string; finish_reason: string }[];
        usage?: { prompt_tokens: number; completion_tokens: number };
      };
      const choice = result.choices?.[0];
      if (!choice) throw new RemoteError(502, 'the server answered without a choice');
      return {
        text: choice.text,
        finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
        promptTokens: result.usage?.prompt_tokens,
        completionTokens: result.usage?.completion_tokens,
      };
    }

    const response = await this.fetch('POST', '/v1/completions', body, options.signal);
    return readEventStream(response, options.onText, (choice) => choice.text);
  }

  /**
   * Decodes with /v2 infer: each step runs the whole sequence (the protocol keeps no cache between calls) and
   * asks only for the logits.
   */
  private async completeInfer(prompt: string, options: RemoteCompletionOptions): Promise<RemoteCompletion> {
    const modelDir = this.endpoint.modelDir!;
    const config = readFolderConfig(modelDir);
    this.tokenizer ??= await loadTokenizer(modelDir);
    const tokenizer = this.tokenizer;
    const metadata = await (this.metadata ??= this.call(
      'GET',
      `/v2/models/${encodeURIComponent(this.endpoint.model)}`,
      undefined,
      options.signal,
    ) as Promise<{
      inputs: InferTensor[];
      outputs: InferTensor[];
    }>).catch((e: unknown) => {
      this.metadata = undefined;
      throw e;
    });
    if (!metadata.inputs.some((i) => i.name === 'input_ids') || !metadata.outputs.some((o) => o.name === 'logits')) {
      throw new Error(
        `${this.endpoint.model} on ${this.base} is not a causal language model (needs input_ids and logits)`,
      );
    }

    const maxTokens = options.maxTokens ?? 64;
    const ids = fitPrompt(tokenizer.encode(prompt), maxTokens, config.contextLength, config.bosTokenId);
    const promptTokens = ids.length;
    const endIds = new Set([config.eosTokenId]);
    if (tokenizer.eosTokenId !== undefined) endIds.add(tokenizer.eosTokenId);
    const text = new CompletionText(tokenizer, options.stop ?? [], maxTokens, endIds);
    const greedy = (options.temperature ?? 0) === 0;
    const sampler = greedy
      ? undefined
      : new Sampler({ temperature: options.temperature, topP: options.topP, seed: options.seed });
    const path = `/v2/models/${encodeURIComponent(this.endpoint.model)}/infer`;

    while (!text.finish) {
      if (options.signal?.aborted) throw options.signal.reason;
      const n = ids.length;
      const inputs = metadata.inputs.map((spec): InferTensor => {
        switch (spec.name) {
          case 'input_ids':
            return { name: spec.name, datatype: spec.datatype, shape: [1, n], data: ids };
          case 'attention_mask':
            return { name: spec.name, datatype: spec.datatype, shape: [1, n], data: new Array(n).fill(1) };
          case 'position_ids':
            return { name: spec.name, datatype: spec.datatype, shape: [1, n], data: ids.map((_, i) => i) };
          default: {
            // An empty cache: [batch 1, heads, 0 positions, head size].
            if (!/^past_key_values\./.test(spec.name) || spec.shape.length !== 4)
              throw new Error(`unsupported input ${spec.name}`);
            const shape = spec.shape.map((d, axis) => (axis === 0 ? 1 : axis === 2 ? 0 : d));
            if (shape.some((d) => d < 0))
              throw new Error(`${spec.name}: the server does not declare its head count and size`);
            return { name: spec.name, datatype: spec.datatype, shape, data: [] };
          }
        }
      });
      const result = (await this.call('POST', path, { inputs, outputs: [{ name: 'logits' }] }, options.signal)) as {
        outputs: InferTensor[];
      };
      const logits = result.outputs?.find((o) => o.name === 'logits');
      if (!logits || logits.shape.length < 2) throw new RemoteError(502, 'the server returned no logits');
      const vocab = logits.shape[logits.shape.length - 1];
      const last = Float32Array.from(logits.data.slice(logits.data.length - vocab));
      const id = sampler ? sampler.pick(last) : argmax(last);
      ids.push(id);
      const fresh = text.push(id, ids.length < config.contextLength);
      if (fresh) options.onText?.(fresh);
    }
    return {
      text: text.text,
      finishReason: text.finish === 'length' ? 'length' : 'stop',
      promptTokens,
      completionTokens: text.tokens,
    };
  }

  private async call(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const response = await this.fetch(method, path, body, signal);
    return response.json();
  }

  private async fetch(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.endpoint.timeoutMs ?? 60_000);
    const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.endpoint.apiKey) headers.authorization = `Bearer ${this.endpoint.apiKey}`;
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (!response.ok) {
      const detail = await response.text().catch(() => '');
      let message = detail;
      try {
        const parsed = JSON.parse(detail) as { error?: string | { message?: string } };
        message = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? detail);
      } catch {
        // not JSON: keep the text
      }
      throw new RemoteError(response.status, `${method} ${path}: ${response.status} ${message}`.trim());
    }
    return response;
  }
}

interface StreamChoice {
  text?: string;
  delta?: { content?: string | null };
  finish_reason?: string | null;
}

/** Reads an OpenAI server-sent event stream to its [DONE], passing each choice's new text to `onText`. */
async function readEventStream(
  response: Response,
  onText: (text: string) => void,
  textOf: (choice: StreamChoice) => string | null | undefined,
): Promise<RemoteCompletion> {
  if (!response.body) throw new RemoteError(502, 'the server sent no stream');
  let text = '';
  let finishReason: 'stop' | 'length' = 'stop';
  let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]')
        return { text, finishReason, promptTokens: usage?.prompt_tokens, completionTokens: usage?.completion_tokens };
      const chunk = JSON.parse(data) as {
        error?: { message?: string };
        choices?: StreamChoice[];
        usage?: typeof usage;
      };
      if (chunk.error) throw new RemoteError(502, chunk.error.message ?? 'the stream reported an error');
      const choice = chunk.choices?.[0];
      const piece = choice ? textOf(choice) : undefined;
      if (piece) {
        text += piece;
        onText(piece);
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason === 'length' ? 'length' : 'stop';
      if (chunk.usage) usage = chunk.usage;
    }
  }
  throw new RemoteError(502, 'the stream ended without [DONE]');
}

/** Messages as plain text, for a model without a chat template. */
function transcript(messages: readonly ChatMessage[]): string {
  const names = { system: 'System', user: 'User', assistant: 'Assistant' } as const;
  return `${messages.map((m) => `${names[m.role]}: ${m.content}`).join('\n\n')}\n\nAssistant:`;
}

/** Why a call failed, in a few words and without the key: timed out, refused, an HTTP status and message. */
export function describeRemoteFailure(error: unknown, timeoutMs?: number): string {
  if (error instanceof RemoteError) return error.message;
  if (error instanceof Error && error.name === 'TimeoutError')
    return timeoutMs === undefined ? 'no answer in time' : `no answer within ${timeoutMs} ms`;
  const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused (nothing listens there)';
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  return error instanceof Error ? error.message : String(error);
}
