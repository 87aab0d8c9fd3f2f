// textDocument/inlineCompletion (LSP 3.18): ghost-text suggestions from the completion model through the
// completion pipeline, with context from the workspace index (built in the background, kept current from the
// open documents and watched-file events). Honors the settings of the document (enable, languages, model,
// limits), answers explicit invocations at once and debounces automatic ones, stops decoding when the client
// cancels, offers several suggestions when the model is unsure, and keeps the local acceptance record.
import * as path from 'node:path';
import {
  type ClientCapabilities,
  DidChangeWatchedFilesNotification,
  FileChangeType,
  type InlineCompletionItem,
  type InlineCompletionList,
  type InlineCompletionParams,
  InlineCompletionTriggerKind,
  type ServerCapabilities,
  type CancellationToken,
} from 'vscode-languageserver';
import { AcceptanceRecord } from '../completion/acceptanceRecord';
import { CompletionCancelled, type CompletionPipeline } from '../completion/completionPipeline';
import { RecentEdits } from '../context/recentEdits';
import { WorkspaceContext } from '../context/workspaceContext';
import { WorkspaceIndex } from '../context/workspaceIndex';
import { WorkspaceIndexer } from '../context/workspaceIndexer';
import { filePath } from '../explanation/workspaceFiles';
import { AcceptanceRates, CompletionAcceptedCommand, GetAcceptanceRates, type Settings } from '../protocol';
import { abortSignalFrom, requestCancelled } from '../util/cancellation';
import type { Lease } from '../registry/modelRegistry';
import { RegistryError } from '../registry/registryError';
import type { LanguageServingModel } from '../registry/servingModel';
import { answering, invalidParams } from './errors';
import type { Feature } from './feature';
import { requireObject, requirePosition, requireUri } from './params';
import type { ServerContext } from './serverContext';
import { remoteSuggestion } from './remoteCompletion';
import { type RemoteRoles, RemoteUnavailable } from './remoteRoles';

const METHOD = 'textDocument/inlineCompletion';
/** An open document's index entry is brought up to date this long after its last change. */
const INDEX_DELAY_MS = 300;
/** The acceptance figures go to the client at most this often. */
const RATES_INTERVAL_MS = 1000;

export class InlineCompletionFeature implements Feature {
  private readonly warnedModels = new Set<string>();
  private readonly recentEdits = new RecentEdits();
  private readonly lastTexts = new Map<string, string>();
  private readonly indexTimers = new Map<string, NodeJS.Timeout>();
  private indexer: WorkspaceIndexer | undefined;
  private workspaceContext: WorkspaceContext | undefined;
  private canWatchFiles = false;
  private ratesTimer: NodeJS.Timeout | undefined;
  readonly acceptance: AcceptanceRecord;

  constructor(
    private readonly context: ServerContext,
    private readonly pipeline: CompletionPipeline,
    /** The workspace folders (file system paths) the index covers. */
    private readonly roots: readonly string[] = [],
    /** The completion role's remote endpoint, when the settings name one (else, or while it is down: local). */
    private readonly remote?: RemoteRoles,
  ) {
    const directory = context.options.modelsDirectory;
    this.acceptance = new AcceptanceRecord(directory ? path.join(directory, '.acceptance.json') : undefined);
  }

  initialize(capabilities: ClientCapabilities): ServerCapabilities {
    if (!capabilities.textDocument?.inlineCompletion) return {};
    const { connection, documents } = this.context;
    connection.languages.inlineCompletion.on((params, token) => answering(() => this.provide(params, token)));
    documents.onDidOpen((event) => this.documentChanged(event.document.uri, event.document.getText()));
    documents.onDidChangeContent((event) => this.documentChanged(event.document.uri, event.document.getText()));
    documents.onDidClose((event) => {
      const uri = event.document.uri;
      this.pipeline.forget(uri);
      this.lastTexts.delete(uri);
      clearTimeout(this.indexTimers.get(uri));
      this.indexTimers.delete(uri);
      const file = filePath(uri);
      if (file) {
        this.workspaceContext?.forget(file);
        void this.indexer?.documentClosed(file);
      }
    });
    connection.onDidChangeWatchedFiles((change) => {
      for (const event of change.changes) {
        const file = filePath(event.uri);
        if (!file || !this.indexer) continue;
        const kind =
          event.type === FileChangeType.Created
            ? 'created'
            : event.type === FileChangeType.Deleted
              ? 'deleted'
              : 'changed';
        void this.indexer.fileEvent(file, kind);
      }
    });
    connection.onExecuteCommand((params) => {
      if (params.command !== CompletionAcceptedCommand.command) return null;
      const [answerId] = (params.arguments ?? []) as Partial<CompletionAcceptedCommand.Arguments>;
      if (typeof answerId === 'string') this.acceptance.accepted(answerId);
      return null;
    });
    connection.onRequest(GetAcceptanceRates.type, () => ({ models: this.acceptance.figures() }));
    this.acceptance.onDidChange(() => this.scheduleRates());
    this.canWatchFiles = capabilities.workspace?.didChangeWatchedFiles?.dynamicRegistration === true;
    return {
      inlineCompletionProvider: {},
      executeCommandProvider: { commands: [CompletionAcceptedCommand.command] },
    };
  }

  async initialized(): Promise<void> {
    const settings = await this.context.settings.get();
    const index = new WorkspaceIndex({ maxChars: settings.completion.indexMegabytes * 1024 * 1024 });
    const indexer = new WorkspaceIndexer(this.roots, index, { log: (m) => this.context.log.info(m) });
    this.indexer = indexer;
    this.workspaceContext = new WorkspaceContext(index, this.recentEdits, undefined, () => indexer.ready);
    for (const document of this.context.documents.all()) this.documentChanged(document.uri, document.getText());
    const started = performance.now();
    // In the background: completions work (with what is indexed so far) while it runs.
    void indexer
      .start()
      .then(() =>
        this.context.log.info(
          `workspace index: ${index.fileCount} files, ${index.windowCount} windows in ` +
            `${Math.round(performance.now() - started)} ms`,
        ),
      );
    if (this.canWatchFiles && this.roots.length > 0) {
      await this.context.connection.client
        .register(DidChangeWatchedFilesNotification.type, { watchers: [{ globPattern: '**/*' }] })
        .catch(() => undefined);
    }
  }

  dispose(): void {
    this.indexer?.dispose();
    for (const timer of this.indexTimers.values()) clearTimeout(timer);
    clearTimeout(this.ratesTimer);
    this.acceptance.save();
  }

  /** Tells the acceptance record what was inserted, records the edited lines, and re-indexes the file soon. */
  private documentChanged(uri: string, text: string): void {
    const before = this.lastTexts.get(uri);
    this.lastTexts.set(uri, text);
    if (before !== undefined) {
      const inserted = insertion(before, text);
      if (inserted) this.acceptance.documentChanged(uri, inserted.offset, inserted.text);
    }
    const file = filePath(uri);
    if (!file || !this.indexer) return;
    if (before !== undefined) this.recentEdits.record(file, before, text);
    clearTimeout(this.indexTimers.get(uri));
    const timer = setTimeout(
      () => {
        this.indexTimers.delete(uri);
        const current = this.lastTexts.get(uri);
        if (current !== undefined) this.indexer?.documentChanged(file, current);
      },
      before === undefined ? 0 : INDEX_DELAY_MS,
    );
    timer.unref?.();
    this.indexTimers.set(uri, timer);
  }

  private scheduleRates(): void {
    if (this.ratesTimer) return;
    this.ratesTimer = setTimeout(() => {
      this.ratesTimer = undefined;
      void this.context.connection
        .sendNotification(AcceptanceRates.type, { models: this.acceptance.figures() })
        .catch(() => undefined);
    }, RATES_INTERVAL_MS);
    this.ratesTimer.unref?.();
  }

  async provide(raw: InlineCompletionParams, token: CancellationToken): Promise<InlineCompletionList> {
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    const params = requireObject(raw, METHOD);
    const uri = requireUri(params, METHOD);
    const document = this.context.documents.get(uri);
    if (!document) throw invalidParams(`${METHOD}: ${uri} is not open (send textDocument/didOpen first)`);
    const position = requirePosition(params.position, 'position', document);
    const triggerKind = (params.context as { triggerKind?: unknown } | undefined)?.triggerKind;
    if (triggerKind !== InlineCompletionTriggerKind.Invoked && triggerKind !== InlineCompletionTriggerKind.Automatic) {
      throw invalidParams(`${METHOD}: context.triggerKind must be 1 (Invoked) or 2 (Automatic)`);
    }

    const settings = await this.context.settings.get(uri);
    const empty: InlineCompletionList = { items: [] };
    if (!settings.completion.enable || settings.completion.disabledLanguages.includes(document.languageId))
      return empty;
    const remote = await this.remoteItems(
      uri,
      document.getText(),
      position,
      document.languageId,
      triggerKind,
      settings,
      token,
    );
    if (remote) return remote;
    const lease = await this.completionModel(settings.models.completion);
    if (!lease) return empty;

    const cancellation = abortSignalFrom(token);
    try {
      const text = document.getText();
      const offset = document.offsetAt(position);
      const file = filePath(uri);
      const workspaceContext =
        settings.completion.workspaceContext && file && this.workspaceContext && this.indexer
          ? {
              snippets: this.workspaceContext.snippetsFor({ key: file, text, offset }),
              path: this.indexer.displayPath(file),
            }
          : undefined;
      const outcome = await this.pipeline.complete(lease.model, {
        uri,
        text,
        offset,
        languageId: document.languageId,
        invoked: triggerKind === InlineCompletionTriggerKind.Invoked,
        settings: settings.completion,
        signal: cancellation.signal,
        workspaceContext,
      });
      const elapsed = performance.now() - started;
      const cpu = process.cpuUsage(cpuStarted);
      this.context.status.update({ lastCompletionMs: Math.round(elapsed * 10) / 10 }, false);
      // CPU time (all threads of the process) is what the request cost without waiting for a busy machine.
      this.context.log.debug(
        `completion ${outcome.source}: ${elapsed.toFixed(1)} ms ` +
          `(cpu ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms), ` +
          `${outcome.generatedTokens} tokens generated, ` +
          `${outcome.reusedTokens}/${outcome.promptTokens} prompt tokens reused` +
          (outcome.timings
            ? `, prompt ${outcome.timings.promptMs.toFixed(1)} ms + ${outcome.timings.perTokenMs.toFixed(2)} ms/token`
            : '') +
          (outcome.meanProbability !== undefined ? `, mean p ${outcome.meanProbability.toFixed(2)}` : '') +
          (outcome.stop ? `, stop ${outcome.stop}` : '') +
          (outcome.contextTokens
            ? `, context ${outcome.contextTokens} tokens (${outcome.contextSnippets} snippets)`
            : '') +
          (outcome.alternatives ? `, ${outcome.alternatives.length} alternatives` : '') +
          (outcome.rejected ? `, not shown: ${outcome.rejected}` : ''),
      );
      if (!outcome.text) return empty;
      const texts = [outcome.text, ...(outcome.alternatives ?? [])];
      const answerId = this.acceptance.shown(lease.model.name, uri, offset, texts);
      const items = texts.map(
        (insertText, i): InlineCompletionItem => ({
          insertText,
          range: { start: position, end: position },
          command: { title: 'Accepted', command: CompletionAcceptedCommand.command, arguments: [answerId, i] },
        }),
      );
      return { items };
    } catch (e) {
      if (e instanceof CompletionCancelled) {
        this.context.log.debug(e.message);
        throw requestCancelled(e.message);
      }
      throw e;
    } finally {
      cancellation.dispose();
      lease.release();
    }
  }

  /**
   * Suggestions from the completion role's remote endpoint; undefined when it has none, or when the endpoint
   * failed just now (then the local model answers, and RemoteRoles has said why, once).
   */
  private async remoteItems(
    uri: string,
    text: string,
    position: InlineCompletionParams['position'],
    languageId: string,
    triggerKind: InlineCompletionTriggerKind,
    settings: Settings,
    token: CancellationToken,
  ): Promise<InlineCompletionList | undefined> {
    const client = this.remote?.clientFor('completion', settings);
    if (!this.remote || !client) return undefined;
    const remote = this.remote;
    const name = remote.label(client);
    const cancellation = abortSignalFrom(token);
    const started = performance.now();
    try {
      const offset = this.context.documents.get(uri)!.offsetAt(position);
      const signal = cancellation.signal;
      const outcome = await remoteSuggestion(
        client,
        `remote:${client.endpoint.protocol}:${name}`,
        this.pipeline,
        {
          uri,
          text,
          offset,
          languageId,
          invoked: triggerKind === InlineCompletionTriggerKind.Invoked,
          signal,
          settings: settings.completion,
        },
        (work) => remote.run('completion', client, signal, work),
      );
      const elapsed = performance.now() - started;
      this.context.status.update({ lastCompletionMs: Math.round(elapsed * 10) / 10 }, false);
      this.context.log.debug(
        `completion ${outcome.source} (${name}): ${elapsed.toFixed(1)} ms` +
          (outcome.generatedTokens !== undefined ? `, ${outcome.generatedTokens} tokens generated` : '') +
          (outcome.stop ? `, stop ${outcome.stop}` : ''),
      );
      if (!outcome.text) return { items: [] };
      const answerId = this.acceptance.shown(name, uri, offset, [outcome.text]);
      return {
        items: [
          {
            insertText: outcome.text,
            range: { start: position, end: position },
            command: { title: 'Accepted', command: CompletionAcceptedCommand.command, arguments: [answerId, 0] },
          },
        ],
      };
    } catch (e) {
      if (e instanceof RemoteUnavailable) return undefined;
      if (cancellation.signal.aborted) throw requestCancelled('completion cancelled');
      throw e;
    } finally {
      cancellation.dispose();
    }
  }

  /** The completion model: the one the settings name, else the active one (with a warning once per bad name). */
  private async completionModel(named: string): Promise<Lease<LanguageServingModel> | undefined> {
    if (named) {
      try {
        return await this.context.registry.acquireLanguageModel('completion', named);
      } catch (e) {
        if (!(e instanceof RegistryError)) throw e;
        if (!this.warnedModels.has(named)) {
          this.warnedModels.add(named);
          const message = `modelwright.models.completion: ${e.message}; using the active model instead`;
          this.context.log.warn(message);
          this.context.status.update({ message });
        }
      }
    }
    try {
      return await this.context.registry.acquireLanguageModel('completion');
    } catch (e) {
      if (e instanceof RegistryError) return undefined; // the status already says why
      throw e;
    }
  }
}

/** The text one change inserted and where, when the change only inserted (no deletion). */
export function insertion(before: string, after: string): { offset: number; text: string } | undefined {
  if (after.length <= before.length) return undefined;
  let start = 0;
  while (start < before.length && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  const tail = before.length - start;
  if (after.slice(after.length - tail) !== before.slice(start)) return undefined;
  return { offset: start, text: after.slice(start, after.length - tail) };
}
