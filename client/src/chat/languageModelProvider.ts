// Contributes the local chat models to VS Code's model picker where the running VS Code has
// `lm.registerLanguageModelChatProvider` (1.104+); on older versions nothing is registered and the rest of the
// extension works as before. Replies come from the language server's modelwright/chat, streamed.
import * as vscode from 'vscode';
import { configurationSection, readSettings } from '../config';
import type { ServerClient } from '../serverClient';
import {
  type ChatModelProvider,
  chatModelInformation,
  estimateTokens,
  type LanguageModelApi,
  languageModelVendor,
  toChatTurns,
} from './languageModels';

export function registerLanguageModelProvider(
  server: ServerClient,
  log: vscode.LogOutputChannel,
  api: LanguageModelApi = vscode as unknown as LanguageModelApi,
): vscode.Disposable | undefined {
  const register = api.lm?.registerLanguageModelChatProvider;
  const TextPart = api.LanguageModelTextPart;
  if (typeof register !== 'function' || typeof TextPart !== 'function') {
    log.info('This VS Code has no language-model provider API (1.104+): local models are not in the model picker.');
    return undefined;
  }
  const changed = new vscode.EventEmitter<void>();
  const provider: ChatModelProvider = {
    onDidChangeLanguageModelChatInformation: changed.event,
    async provideLanguageModelChatInformation() {
      if (server.connection !== 'running') return [];
      const { models } = await server.listModels();
      const maxTokens = readSettings(vscode.workspace.getConfiguration(configurationSection)).explanation.maxTokens;
      return chatModelInformation(models, maxTokens);
    },
    async provideLanguageModelChatResponse(model, messages, _options, progress, token) {
      await server.chat(
        { model: model.id, messages: toChatTurns(messages), maxTokens: model.maxOutputTokens },
        (text) => progress.report(new TextPart(text)),
        token,
      );
    },
    async provideTokenCount(_model, text) {
      return estimateTokens(text);
    },
  };
  // The list changes when the server (re)starts and when models are trained, downloaded or deleted.
  let listed = '';
  const refresh = () => {
    const key = `${server.connection}|${JSON.stringify(server.lastStatus?.active)}|${server.lastStatus?.training?.phase}`;
    if (key !== listed) changed.fire();
    listed = key;
  };
  return vscode.Disposable.from(
    register.call(api.lm, languageModelVendor, provider),
    changed,
    server.onDidChangeConnection(refresh),
    server.onDidChangeStatus(refresh),
  );
}
