// textDocument/hover: with `modelwright.explanation.hover` on, the explanation of the hovered line (the
// identifier under the cursor first in the grounding); otherwise only a short note when the line is unusual
// for this codebase (surprisal above the file's mean + 2σ), and nothing at all for ordinary lines.
import {
  type CancellationToken,
  type ClientCapabilities,
  type Hover,
  type HoverParams,
  MarkupKind,
  type ServerCapabilities,
} from 'vscode-languageserver';
import { abortSignalFrom } from '../util/cancellation';
import { UNUSUAL_DEVIATIONS, isUnusual, lineBits } from '../explanation/surprisal';
import { RegistryError } from '../registry/registryError';
import { answering, invalidParams } from './errors';
import type { ExplainFeature } from './explain';
import type { Feature } from './feature';
import { requireObject, requirePosition, requireUri } from './params';
import type { ServerContext } from './serverContext';

const METHOD = 'textDocument/hover';

export class HoverFeature implements Feature {
  private markdown = true;

  constructor(
    private readonly context: ServerContext,
    private readonly explainer: ExplainFeature,
  ) {}

  initialize(capabilities: ClientCapabilities): ServerCapabilities {
    const hover = capabilities.textDocument?.hover;
    if (!hover) return {};
    this.markdown = !hover.contentFormat || hover.contentFormat.includes(MarkupKind.Markdown);
    this.context.connection.onHover((params, token) => answering(() => this.provide(params, token)));
    return { hoverProvider: true };
  }

  private async provide(raw: HoverParams, token: CancellationToken): Promise<Hover | null> {
    const params = requireObject(raw, METHOD);
    const uri = requireUri(params, METHOD);
    const document = this.context.documents.get(uri);
    if (!document) throw invalidParams(`${METHOD}: ${uri} is not open`);
    const position = requirePosition(params.position, 'position', document);
    const line = position.line;
    const lineText = document.getText({ start: { line, character: 0 }, end: { line: line + 1, character: 0 } });
    if (lineText.trim() === '') return null;
    const settings = await this.context.settings.get(uri);
    const cancellation = abortSignalFrom(token);
    try {
      if (settings.explanation.hover) {
        const result = await this.explainer.explainRange({
          document,
          range: { start: { line, character: 0 }, end: { line, character: lineText.length } },
          settings,
          signal: cancellation.signal,
          focus: identifierAt(lineText, position.character),
        });
        return this.hover(result.text);
      }
      const lease = await this.context.registry
        .acquireLanguageModel('completion', settings.models.completion || undefined)
        .catch((e: unknown) => {
          if (e instanceof RegistryError) return undefined;
          throw e;
        });
      if (!lease) return null;
      try {
        const statistics = await this.explainer.lineStatistics(document, lease.model, line, line, cancellation.signal);
        if (!isUnusual(statistics, line)) return null;
        const bits = lineBits(statistics, line)!;
        return this.hover(
          `Modelwright: unusual line for this codebase — ${bits.toFixed(2)} bits/token under ${lease.model.name} ` +
            `(file: ${statistics.mean.toFixed(2)} ± ${statistics.deviation.toFixed(2)}; ` +
            `above mean + ${UNUSUAL_DEVIATIONS}σ)`,
        );
      } finally {
        lease.release();
      }
    } finally {
      cancellation.dispose();
    }
  }

  private hover(text: string): Hover {
    return { contents: { kind: this.markdown ? MarkupKind.Markdown : MarkupKind.PlainText, value: text } };
  }
}

/** The identifier that the character offset is in or touches, if any. */
export function identifierAt(line: string, character: number): string | undefined {
  for (const match of line.matchAll(/[A-Za-z_$][\w$]*/g)) {
    const start = match.index ?? 0;
    if (character >= start && character <= start + match[0].length) return match[0];
  }
  return undefined;
}
