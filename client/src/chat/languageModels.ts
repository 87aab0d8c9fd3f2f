// The local chat models as VS Code's model picker sees them (the language-model provider API finalised in 1.104):
// the shapes of that API this extension uses, declared here because it is built against the 1.91 types, and the
// pure mappings (models to picker entries, the editor's messages to chat turns, a token estimate), tested without
// VS Code.
import type * as vscode from 'vscode';
import type { ChatTurn, ModelSummary } from '../../../server/src/protocol';
import { describeModel } from '../format';

/** The vendor id of `contributes.languageModelChatProviders`. */
export const languageModelVendor = 'modelwright';

/** LanguageModelChatInformation (vscode.d.ts 1.104). */
export interface ChatModelInformation {
  readonly id: string;
  readonly name: string;
  readonly family: string;
  readonly version: string;
  readonly tooltip?: string;
  readonly detail?: string;
  readonly maxInputTokens: number;
  readonly maxOutputTokens: number;
  readonly capabilities: { readonly imageInput?: boolean; readonly toolCalling?: boolean | number };
}

/** LanguageModelChatRequestMessage (1.104): role 1 is the user, 2 the assistant; content is a list of parts. */
export interface ChatRequestMessage {
  readonly role: number;
  readonly content: ReadonlyArray<unknown>;
  readonly name: string | undefined;
}

/** LanguageModelChatProvider (1.104). */
export interface ChatModelProvider {
  readonly onDidChangeLanguageModelChatInformation?: vscode.Event<void>;
  provideLanguageModelChatInformation(
    options: { readonly silent: boolean },
    token: vscode.CancellationToken,
  ): vscode.ProviderResult<ChatModelInformation[]>;
  provideLanguageModelChatResponse(
    model: ChatModelInformation,
    messages: readonly ChatRequestMessage[],
    options: unknown,
    progress: vscode.Progress<unknown>,
    token: vscode.CancellationToken,
  ): Thenable<void>;
  provideTokenCount(
    model: ChatModelInformation,
    text: string | ChatRequestMessage,
    token: vscode.CancellationToken,
  ): Thenable<number>;
}

/** The part of the `vscode` module of 1.104+ that the provider needs; absent members mean an older VS Code. */
export interface LanguageModelApi {
  lm?: { registerLanguageModelChatProvider?: (vendor: string, provider: ChatModelProvider) => vscode.Disposable };
  LanguageModelTextPart?: new (value: string) => unknown;
}

/** The context a model takes when its folder does not say. */
const fallbackContext = 2048;

/** The picker entries: every chat model (a causal LM whose folder has a chat template). */
export function chatModelInformation(models: readonly ModelSummary[], maxOutputTokens: number): ChatModelInformation[] {
  return models
    .filter((m) => m.kind === 'causal-lm' && m.chat)
    .map((m) => {
      const context = m.contextLength ?? fallbackContext;
      const output = Math.min(maxOutputTokens, Math.floor(context / 2));
      return {
        id: m.name,
        name: m.name,
        family: m.modelType ?? 'modelwright',
        version: m.origin?.commit.slice(0, 12) ?? m.createdAt ?? '1',
        tooltip: `${describeModel(m)}. Runs on this machine with Modelwright; nothing is sent elsewhere.`,
        detail: 'Modelwright, local',
        maxInputTokens: context - output,
        maxOutputTokens: output,
        capabilities: { imageInput: false, toolCalling: false },
      };
    });
}

/** The text of a message's parts: text parts as they are, tool results by their text; other parts are left out. */
export function messageText(content: ReadonlyArray<unknown>): string {
  return content
    .map((part) => {
      if (typeof part === 'string') return part;
      if (!part || typeof part !== 'object') return '';
      const { value, content: inner } = part as { value?: unknown; content?: unknown };
      if (typeof value === 'string') return value;
      if (Array.isArray(inner)) return messageText(inner);
      return '';
    })
    .join('');
}

/** The editor's messages as chat turns (roles other than the assistant's count as the user's). */
export function toChatTurns(messages: readonly ChatRequestMessage[]): ChatTurn[] {
  return messages
    .map((m): ChatTurn => ({ role: m.role === 2 ? 'assistant' : 'user', content: messageText(m.content) }))
    .filter((turn) => turn.content.length > 0);
}

/**
 * About how many tokens a text is, for the editor's budgeting: a byte-level BPE on code averages near four
 * characters per token, and a slight over-estimate keeps prompts inside the context.
 */
export function estimateTokens(text: string | ChatRequestMessage): number {
  const characters = typeof text === 'string' ? text.length : messageText(text.content).length;
  return Math.ceil(characters / 3.5);
}
