// Writes an explanation of a range, streamed in chunks: where its names are defined and used, how unusual its lines
// are for this codebase (surprisal), then the explanation model's text — real prose from a chat model, but only a
// continued code comment from the ~2M-parameter code models trained here (labelled so: the first two carry the value).
import type { Explain, LineSurprisal } from '../protocol';
import { lineCommentFor } from '../util/brackets';
import type { ChatModel } from '../runtime/chatModel';
import { generate } from '../runtime/generate';
import type { LanguageModel } from '../runtime/languageModel';
import { type SourceFile, describeGrounding, groundSymbols, identifiersIn } from './grounding';
import { type LineStatistics, UNUSUAL_DEVIATIONS, isUnusual, lineBits } from './surprisal';

export interface ExplainTarget {
  /** Display path of the document. */
  path: string;
  languageId: string;
  /** The whole document. */
  text: string;
  /** 0-based, inclusive. */
  startLine: number;
  endLine: number;
  /** The text of the range. */
  code: string;
  /** The identifier under the cursor, ranked first. */
  focus?: string;
}

export type ExplanationWriter =
  | { kind: 'chat'; name: string; chatModel: ChatModel }
  | { kind: 'code'; name: string; languageModel: LanguageModel };

export interface ExplainSources {
  writer?: ExplanationWriter;
  /** Open documents and workspace files to search for definitions and usages. */
  sources: readonly SourceFile[];
  /** Surprisal of the document's lines under the workspace (completion) model, if one is loaded. */
  statistics?: () => Promise<LineStatistics | undefined>;
  surprisalModel?: string;
}

export interface ExplainOptions {
  maxTokens: number;
  signal?: AbortSignal;
  onChunk?: (chunk: Explain.Chunk) => void;
}

export async function explain(
  target: ExplainTarget,
  using: ExplainSources,
  options: ExplainOptions,
): Promise<Explain.Result> {
  let text = '';
  const emit = (chunk: string) => {
    if (!chunk) return;
    text += chunk;
    options.onChunk?.({ text: chunk });
  };
  const lineLabel =
    target.startLine === target.endLine
      ? `line ${target.startLine + 1}`
      : `lines ${target.startLine + 1}–${target.endLine + 1}`;

  // 1. Grounding: instant and the most reliable part.
  const symbols = groundSymbols(identifiersIn(target.code), using.sources, {
    exclude: { path: target.path, startLine: target.startLine, endLine: target.endLine },
    focus: target.focus,
  });
  const facts = describeGrounding(symbols);
  emit(`**${target.path}, ${lineLabel}**\n\n`);
  emit(
    facts.length
      ? `**Where its names come from**\n${facts.map((f) => `- ${f}`).join('\n')}\n\n`
      : 'No definitions or usages of its names were found elsewhere in the workspace.\n\n',
  );

  // 2. Surprisal of each line under the workspace model.
  const statistics = using.statistics ? await using.statistics() : undefined;
  const lines: LineSurprisal[] = [];
  if (statistics) {
    for (let line = target.startLine; line <= target.endLine; line++) {
      const bits = lineBits(statistics, line);
      if (bits !== undefined) lines.push({ line, bitsPerToken: round(bits), unusual: isUnusual(statistics, line) });
    }
    emit(describeSurprisal(target, lines, statistics, using.surprisalModel ?? 'the completion model'));
  }

  // 3. The explanation model's text.
  const writer = using.writer;
  if (writer?.kind === 'chat') {
    emit(`**Explanation** (${writer.name})\n\n`);
    await writer.chatModel.chat(chatMessages(target, lineLabel, facts), {
      maxTokens: options.maxTokens,
      signal: options.signal,
      onText: emit,
    });
    emit('\n');
  } else if (writer?.kind === 'code') {
    emit(
      `**Comment continued by the code model** (${writer.name}; a small code model writes code-like text, ` +
        'not reliable English — the facts above are the dependable part)\n\n> ',
    );
    await continueComment(writer.languageModel, target, lineLabel, facts, options, (piece) =>
      emit(piece.replace(/\n/g, '\n> ')),
    );
    emit('\n');
  }
  return { text, model: writer?.name ?? '', lines };
}

/** Lines of comment the code model may write. */
const MAX_COMMENT_LINES = 6;

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function describeSurprisal(
  target: ExplainTarget,
  lines: LineSurprisal[],
  statistics: LineStatistics,
  model: string,
): string {
  const heading =
    `**How usual these lines are for this codebase** (bits per token under ${model}; ` +
    `file mean ${statistics.mean.toFixed(2)} ± ${statistics.deviation.toFixed(2)})\n`;
  if (lines.length === 0) return `${heading}- no code lines to score\n\n`;
  const sourceLines = target.text.split('\n');
  const unusual = lines.filter((l) => l.unusual);
  const quote = (line: number) => {
    const t = sourceLines[line]?.trim() ?? '';
    return t.length > 80 ? `${t.slice(0, 77)}…` : t;
  };
  if (unusual.length === 0) {
    const most = lines.reduce((a, b) => (b.bitsPerToken > a.bitsPerToken ? b : a));
    return (
      `${heading}- nothing unusual (all below mean + ${UNUSUAL_DEVIATIONS}σ); ` +
      `the least expected is line ${most.line + 1} at ${most.bitsPerToken.toFixed(2)} bits/token\n\n`
    );
  }
  const items = unusual.map(
    (l) => `- line ${l.line + 1}: ${l.bitsPerToken.toFixed(2)} bits/token — unusual: \`${quote(l.line)}\``,
  );
  return `${heading}${items.join('\n')}\n\n`;
}

function chatMessages(target: ExplainTarget, lineLabel: string, facts: string[]) {
  const grounding = facts.length ? `\n\nFacts from the workspace:\n${facts.map((f) => `- ${f}`).join('\n')}` : '';
  return [
    {
      role: 'system' as const,
      content:
        "You explain code from the user's workspace in a few plain sentences. " +
        'Use the workspace facts you are given; say so when you are unsure.',
    },
    {
      role: 'user' as const,
      content:
        `Explain what this code from ${target.path} (${lineLabel}) does.\n\n` +
        `\`\`\`${target.languageId}\n${target.code}\n\`\`\`${grounding}`,
    },
  ];
}

/** Lets the code model continue a comment written after the code; stops at the first line that is not a comment. */
async function continueComment(
  model: LanguageModel,
  target: ExplainTarget,
  lineLabel: string,
  facts: string[],
  options: ExplainOptions,
  emit: (text: string) => void,
): Promise<void> {
  const comment = lineCommentFor(target.languageId);
  const opening = 'In short, this code';
  const prompt =
    `${target.code}\n` +
    `${comment} ${target.path}, ${lineLabel}.\n` +
    facts.map((f) => `${comment} ${f.replace(/`/g, '')}\n`).join('') +
    `${comment} ${opening}`;
  emit(opening);
  const maxTokens = Math.max(1, Math.min(options.maxTokens, Math.floor(model.config.contextLength / 2)));
  const stopper = new AbortController();
  let pending = '';
  let lines = 0;
  /** Emits one generated line (comment marker removed); false when it is not a comment line or too many came. */
  const flushLine = (line: string): boolean => {
    if (lines === 0) {
      emit(line);
    } else {
      const trimmed = line.trimStart();
      if (!trimmed.startsWith(comment) || lines >= MAX_COMMENT_LINES) return false;
      const content = trimmed.slice(comment.length).trim();
      if (content) emit(`\n${content}`);
    }
    lines++;
    return true;
  };
  await generate(model, prompt, {
    maxTokens,
    temperature: 0,
    signal: options.signal ? AbortSignal.any([options.signal, stopper.signal]) : stopper.signal,
    onToken: (piece) => {
      if (stopper.signal.aborted) return;
      pending += piece;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (!flushLine(line)) {
          stopper.abort();
          pending = '';
          return;
        }
        newline = pending.indexOf('\n');
      }
    },
  });
  if (pending && !stopper.signal.aborted) flushLine(pending);
}
