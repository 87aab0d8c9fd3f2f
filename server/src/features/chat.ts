// modelwright/chat: the next assistant turn of a conversation from a chat model (a model folder with a chat
// template), streamed as partial results. The editor's chat view and model picker use it; the model is the one
// named in the request, else the explanation role's.
import type { CancellationToken, ClientCapabilities, ServerCapabilities } from 'vscode-languageserver';
import { Chat, type ChatTurn, chatLimits, clampSetting } from '../protocol';
import { abortSignalFrom, requestCancelled } from '../util/cancellation';
import { answering, invalidParams, requestFailed } from './errors';
import type { Feature } from './feature';
import { requireObject } from './params';
import type { ServerContext } from './serverContext';

const roles = new Set<ChatTurn['role']>(['system', 'user', 'assistant']);

/** The conversation of a request, checked turn by turn (InvalidParams naming the first bad one). */
export function requireTurns(value: unknown): ChatTurn[] {
  if (!Array.isArray(value) || value.length === 0) throw invalidParams(`${Chat.method}: messages must be a list`);
  if (value.length > chatLimits.maxTurns)
    throw invalidParams(`${Chat.method}: at most ${chatLimits.maxTurns} messages (got ${value.length})`);
  let characters = 0;
  const turns = value.map((turn: unknown, i): ChatTurn => {
    const { role, content } = (turn ?? {}) as Record<string, unknown>;
    if (typeof role !== 'string' || !roles.has(role as ChatTurn['role']))
      throw invalidParams(`${Chat.method}: messages[${i}].role must be system, user or assistant`);
    if (typeof content !== 'string') throw invalidParams(`${Chat.method}: messages[${i}].content must be text`);
    characters += content.length;
    return { role: role as ChatTurn['role'], content };
  });
  if (characters > chatLimits.maxCharacters)
    throw invalidParams(`${Chat.method}: the messages have ${characters} characters, over ${chatLimits.maxCharacters}`);
  if (turns.at(-1)?.role === 'assistant')
    throw invalidParams(`${Chat.method}: the last message must not be the assistant's`);
  return turns;
}

export class ChatFeature implements Feature {
  constructor(private readonly context: ServerContext) {}

  initialize(_capabilities: ClientCapabilities): ServerCapabilities {
    this.context.connection.onRequest(Chat.type, (params, token) => answering(() => this.handle(params, token)));
    return {};
  }

  private async handle(raw: Chat.Params, token: CancellationToken): Promise<Chat.Result> {
    const params = requireObject(raw, Chat.method);
    const messages = requireTurns(params.messages);
    if (params.model !== undefined && typeof params.model !== 'string')
      throw invalidParams(`${Chat.method}: model must be a model name`);
    if (params.maxTokens !== undefined && (typeof params.maxTokens !== 'number' || !Number.isFinite(params.maxTokens)))
      throw invalidParams(`${Chat.method}: maxTokens must be a number`);
    const settings = await this.context.settings.get();
    const maxTokens = clampSetting('explanation.maxTokens', params.maxTokens ?? settings.explanation.maxTokens);
    const lease = await this.context.registry.acquire('explanation', (params.model as string) || undefined);
    if (!lease) throw requestFailed('no explanation model is deployed');
    const progress = await this.context.progress.begin(raw.workDoneToken, `Asking ${lease.model.name}`, true);
    const cancellation = abortSignalFrom(token);
    const signal = AbortSignal.any([cancellation.signal, progress.signal]);
    try {
      const model = lease.model;
      if (model.flavor !== 'chat')
        throw invalidParams(`${model.name} has no chat template: chat needs an instruction-tuned (chat) model`);
      const partial = raw.partialResultToken;
      const text = await model.chatModel.chat(messages, {
        maxTokens,
        signal,
        onText:
          partial !== undefined
            ? (piece) => void this.context.connection.sendProgress(Chat.chunkType, partial, { text: piece })
            : undefined,
      });
      if (signal.aborted) throw requestCancelled('chat cancelled');
      return { text, model: model.name };
    } finally {
      progress.done();
      cancellation.dispose();
      lease.release();
    }
  }
}
