// textDocument/codeAction: offers "Explain with Modelwright" for the selection (or the cursor line). The action
// carries the command `modelwright.explain` with the document URI and range; the client runs it (the VS Code
// extension sends modelwright/explain and shows the streamed result).
import {
  type ClientCapabilities,
  type CodeAction,
  CodeActionKind,
  type CodeActionParams,
  Command,
  type ServerCapabilities,
} from 'vscode-languageserver';
import { ExplainCommand } from '../protocol';
import { answering } from './errors';
import type { Feature } from './feature';
import { requireObject, requireRange, requireUri } from './params';
import type { ServerContext } from './serverContext';

const METHOD = 'textDocument/codeAction';
export const EXPLAIN_TITLE = 'Explain with Modelwright';

export class CodeActionFeature implements Feature {
  private literals = false;

  constructor(private readonly context: ServerContext) {}

  initialize(capabilities: ClientCapabilities): ServerCapabilities {
    const codeAction = capabilities.textDocument?.codeAction;
    if (!codeAction) return {};
    this.literals = !!codeAction.codeActionLiteralSupport;
    this.context.connection.onCodeAction((params) => answering(async () => this.provide(params)));
    return { codeActionProvider: this.literals ? { codeActionKinds: [CodeActionKind.Empty] } : true };
  }

  private provide(raw: CodeActionParams): (CodeAction | Command)[] {
    const params = requireObject(raw, METHOD);
    const uri = requireUri(params, METHOD);
    const document = this.context.documents.get(uri);
    if (!document) return [];
    const range = requireRange(params.range, 'range', document);
    const only = (params.context as { only?: unknown } | undefined)?.only;
    if (Array.isArray(only) && only.length > 0 && !only.includes(CodeActionKind.Empty)) return [];
    const explained =
      range.start.line === range.end.line && range.start.character === range.end.character
        ? { start: { line: range.start.line, character: 0 }, end: { line: range.start.line + 1, character: 0 } }
        : range;
    const target =
      explained.end.line >= document.lineCount
        ? { ...explained, end: document.positionAt(document.getText().length) }
        : explained;
    const args: ExplainCommand.Arguments = [uri, target];
    const command = Command.create(EXPLAIN_TITLE, ExplainCommand.command, ...args);
    return [this.literals ? { title: EXPLAIN_TITLE, kind: CodeActionKind.Empty, command } : command];
  }
}
