// modelwright/explain: explains a range, streaming chunks as partial results and answering with the whole text and
// per-line surprisal. Explanation model: the settings' one, else the deployed one (a chat model when its folder has a
// chat template), else the completion model; surprisal always comes from the completion (workspace) model.
import * as fs from 'node:fs';
import type { CancellationToken, ClientCapabilities, Range, ServerCapabilities } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { abortSignalFrom, requestCancelled } from '../util/cancellation';
import { LruMap } from '../util/lruMap';
import { type ExplanationWriter, explain } from '../explanation/explainer';
import { type LineStatistics, lineSurprisal } from '../explanation/surprisal';
import { filePath } from '../explanation/workspaceFiles';
import { languageIdOf } from '../workspace/languageIds';
import { Explain, type Settings } from '../protocol';
import type { Lease } from '../registry/modelRegistry';
import { RegistryError } from '../registry/registryError';
import type { LanguageServingModel } from '../registry/servingModel';
import { answering, invalidParams } from './errors';
import type { Feature } from './feature';
import { requireObject, requireRange, requireUri } from './params';
import type { ServerContext } from './serverContext';
import { explainRemotely } from './remoteExplanation';
import type { RemoteRoles } from './remoteRoles';

/** Files with more tokens than this are scored in a window of lines around the range, not whole. */
const WHOLE_FILE_CHARACTERS = 24_000;
const WINDOW_LINES = 200;

export interface ExplainRequest {
  document: TextDocument;
  range: Range;
  settings: Settings;
  signal: AbortSignal;
  onChunk?: (chunk: Explain.Chunk) => void;
  focus?: string;
}

export class ExplainFeature implements Feature {
  private readonly statistics = new LruMap<string, Promise<LineStatistics>>(16);

  constructor(
    private readonly context: ServerContext,
    /** The explanation role's remote endpoint, when the settings name one (else, or while it is down: local). */
    private readonly remote?: RemoteRoles,
  ) {}

  initialize(_capabilities: ClientCapabilities): ServerCapabilities {
    this.context.connection.onRequest(Explain.type, (params, token) => answering(() => this.handle(params, token)));
    return {};
  }

  private async handle(raw: Explain.Params, token: CancellationToken): Promise<Explain.Result> {
    const params = requireObject(raw, Explain.method);
    const uri = requireUri(params, Explain.method);
    const document = this.documentFor(uri);
    const range = requireRange(params.range, 'range', document);
    const settings = await this.context.settings.get(uri);
    const partial = raw.partialResultToken;
    const progress = await this.context.progress.begin(raw.workDoneToken, 'Explaining', true);
    const cancellation = abortSignalFrom(token);
    const signal = AbortSignal.any([cancellation.signal, progress.signal]);
    try {
      const result = await this.explainRange({
        document,
        range,
        settings,
        signal,
        onChunk:
          partial !== undefined
            ? (chunk) => void this.context.connection.sendProgress(Explain.chunkType, partial, chunk)
            : undefined,
      });
      if (signal.aborted) throw requestCancelled('explanation cancelled');
      return result;
    } finally {
      progress.done();
      cancellation.dispose();
    }
  }

  /** An open document, or a file: URI read from disk. */
  documentFor(uri: string): TextDocument {
    const open = this.context.documents.get(uri);
    if (open) return open;
    const file = filePath(uri);
    if (file && fs.existsSync(file) && fs.statSync(file).isFile()) {
      return TextDocument.create(uri, languageIdOf(file), 0, fs.readFileSync(file, 'utf8'));
    }
    throw invalidParams(`${uri} is neither open nor a readable file`);
  }

  /**
   * The explanation of a range; used by modelwright/explain and by the hover. The explanation role's remote
   * endpoint writes it when the settings name one that answers; otherwise the local model does.
   */
  async explainRange(request: ExplainRequest): Promise<Explain.Result> {
    const client = this.remote?.clientFor('explanation', request.settings);
    if (this.remote && client) {
      const result = await explainRemotely(this.remote, client, request, (writer, onChunk) =>
        this.explainWith({ ...request, onChunk }, writer),
      );
      if (result) return result;
    }
    return this.explainWith(request);
  }

  /** The explanation, written by `remoteWriter` or else by the local explanation model. */
  private async explainWith(request: ExplainRequest, remoteWriter?: ExplanationWriter): Promise<Explain.Result> {
    const { document, range, settings } = request;
    const writerLease = remoteWriter
      ? undefined
      : await this.context.registry.acquire('explanation', settings.models.explanation || undefined);
    let surprisalLease: Lease<LanguageServingModel> | undefined;
    try {
      surprisalLease = await this.context.registry.acquireLanguageModel(
        'completion',
        settings.models.completion || undefined,
      );
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      this.context.log.warn(`no surprisal for the explanation: ${e.message}`);
    }
    try {
      const text = document.getText();
      const endLine =
        range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line;
      const code = document
        .getText({ start: { line: range.start.line, character: 0 }, end: { line: endLine + 1, character: 0 } })
        .replace(/\n$/, '');
      const writerModel = writerLease?.model;
      const writer: ExplanationWriter | undefined = remoteWriter
        ? remoteWriter
        : !writerModel
          ? undefined
          : writerModel.flavor === 'chat'
            ? { kind: 'chat', name: writerModel.name, chatModel: writerModel.chatModel }
            : { kind: 'code', name: writerModel.name, languageModel: writerModel.languageModel };
      const surprisalModel = surprisalLease?.model;
      return await explain(
        {
          path: this.context.workspaceFiles.displayPath(document.uri),
          languageId: document.languageId,
          text,
          startLine: range.start.line,
          endLine,
          code,
          focus: request.focus,
        },
        {
          writer,
          sources: await this.context.workspaceFiles.sources(this.context.documents.all()),
          statistics: surprisalModel
            ? () => this.lineStatistics(document, surprisalModel, range.start.line, endLine, request.signal)
            : undefined,
          surprisalModel: surprisalModel?.name,
        },
        { maxTokens: settings.explanation.maxTokens, signal: request.signal, onChunk: request.onChunk },
      );
    } finally {
      writerLease?.release();
      surprisalLease?.release();
    }
  }

  /** Per-line surprisal of the document (or of a window around the lines, for long files), cached per version. */
  async lineStatistics(
    document: TextDocument,
    model: LanguageServingModel,
    startLine: number,
    endLine: number,
    signal?: AbortSignal,
  ): Promise<LineStatistics> {
    const text = document.getText();
    let first = 0;
    let end = document.lineCount;
    if (text.length > WHOLE_FILE_CHARACTERS) {
      first = Math.max(0, Math.floor(startLine / WINDOW_LINES) * WINDOW_LINES - WINDOW_LINES);
      end = Math.min(document.lineCount, Math.ceil((endLine + 1) / WINDOW_LINES) * WINDOW_LINES + WINDOW_LINES);
    }
    const key = `${document.uri}@${document.version}#${model.key}:${first}-${end}`;
    let statistics = this.statistics.get(key);
    if (!statistics) {
      statistics = lineSurprisal(model.languageModel, text, { firstLine: first, endLine: end, signal });
      this.statistics.set(key, statistics);
      statistics.catch(() => this.statistics.delete(key));
    }
    return statistics;
  }
}
