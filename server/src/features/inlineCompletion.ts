// textDocument/inlineCompletion (LSP 3.18): ghost-text suggestions from the completion model through the
// completion pipeline. Honors the settings of the document (enable, languages, model, limits), answers explicit
// invocations at once and debounces automatic ones, and stops decoding when the client cancels.
import {
  type ClientCapabilities,
  type InlineCompletionList,
  type InlineCompletionParams,
  InlineCompletionTriggerKind,
  type ServerCapabilities,
  type CancellationToken,
} from 'vscode-languageserver';
import { abortSignalFrom, requestCancelled } from '../util/cancellation';
import { CompletionCancelled, type CompletionPipeline } from '../completion/completionPipeline';
import type { Lease } from '../registry/modelRegistry';
import { RegistryError } from '../registry/registryError';
import type { LanguageServingModel } from '../registry/servingModel';
import { answering, invalidParams } from './errors';
import type { Feature } from './feature';
import { requireObject, requirePosition, requireUri } from './params';
import type { ServerContext } from './serverContext';

const METHOD = 'textDocument/inlineCompletion';

export class InlineCompletionFeature implements Feature {
  private readonly warnedModels = new Set<string>();

  constructor(
    private readonly context: ServerContext,
    private readonly pipeline: CompletionPipeline,
  ) {}

  initialize(capabilities: ClientCapabilities): ServerCapabilities {
    if (!capabilities.textDocument?.inlineCompletion) return {};
    this.context.connection.languages.inlineCompletion.on((params, token) =>
      answering(() => this.provide(params, token)),
    );
    this.context.documents.onDidClose((event) => this.pipeline.forget(event.document.uri));
    return { inlineCompletionProvider: {} };
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
    const lease = await this.completionModel(settings.models.completion);
    if (!lease) return empty;

    const cancellation = abortSignalFrom(token);
    try {
      const outcome = await this.pipeline.complete(lease.model, {
        uri,
        text: document.getText(),
        offset: document.offsetAt(position),
        languageId: document.languageId,
        invoked: triggerKind === InlineCompletionTriggerKind.Invoked,
        settings: settings.completion,
        signal: cancellation.signal,
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
          (outcome.rejected ? `, not shown: ${outcome.rejected}` : ''),
      );
      if (!outcome.text) return empty;
      return { items: [{ insertText: outcome.text, range: { start: position, end: position } }] };
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
