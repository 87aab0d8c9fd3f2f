// Renders the chosen context snippets into prompt text within a token budget: as line comments headed by the
// file's path (`// Path: src/a.ts`, as Tabby does), or, when the tokenizer has the family's repository tokens
// (Qwen2.5-Coder's `<|file_sep|>`), as the files the model was trained to see before the current one.
import type { ContextSnippet } from './workspaceContext';

export interface ContextTokenizer {
  encode(text: string): number[];
  tokenId(token: string): number | undefined;
}

export interface RenderOptions {
  /** The current language's line comment (`//`, `#`, `--`). */
  lineComment: string;
  /** The current file's display path (named after the context in the file-separator style). */
  currentPath: string;
}

export interface RenderedContext {
  text: string;
  ids: number[];
  /** Snippets that fit (whole or cut to their first lines). */
  snippets: number;
  style: 'comments' | 'fileSeparator';
}

export const FILE_SEPARATOR = '<|file_sep|>';

export function renderContext(
  snippets: readonly ContextSnippet[],
  tokenizer: ContextTokenizer,
  budget: number,
  options: RenderOptions,
): RenderedContext {
  const separated = tokenizer.tokenId(FILE_SEPARATOR) !== undefined;
  const style = separated ? 'fileSeparator' : 'comments';
  const empty: RenderedContext = { text: '', ids: [], snippets: 0, style };
  if (snippets.length === 0 || budget <= 0) return empty;
  const comment = options.lineComment;
  const header = (s: ContextSnippet) => (separated ? `${FILE_SEPARATOR}${s.path}\n` : `${comment} Path: ${s.path}\n`);
  const body = (lines: string[]) =>
    separated ? `${lines.join('\n')}\n` : lines.map((l) => (l ? `${comment} ${l}\n` : `${comment}\n`)).join('');
  const trailer = separated ? `${FILE_SEPARATOR}${options.currentPath}\n` : '';
  const count = (text: string) => tokenizer.encode(text).length;

  const pieces: string[] = [];
  let used = trailer ? count(trailer) : 0;
  for (const snippet of snippets) {
    const lines = snippet.text.split('\n');
    const whole = header(snippet) + body(lines);
    const tokens = count(whole);
    if (used + tokens <= budget) {
      pieces.push(whole);
      used += tokens;
      continue;
    }
    // The first lines that still fit, if any do.
    let kept = '';
    for (let n = lines.length - 1; n >= 1 && !kept; n--) {
      const cut = header(snippet) + body(lines.slice(0, n));
      if (used + count(cut) <= budget) kept = cut;
    }
    if (kept) pieces.push(kept);
    break;
  }
  // Pieces were counted one by one; the whole may tokenize a little differently at their joins.
  while (pieces.length > 0) {
    const text = pieces.join('') + trailer;
    const ids = tokenizer.encode(text);
    if (ids.length <= budget) return { text, ids, snippets: pieces.length, style };
    pieces.pop();
  }
  return empty;
}
