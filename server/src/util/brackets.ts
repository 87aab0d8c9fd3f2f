// Bracket scanning shared by the completion stop rules and filters and by explanations: which brackets code
// opens and closes, skipping string literals and line comments well enough for decisions about one suggestion.
export const closerOf: Readonly<Record<string, string>> = { '(': ')', '[': ']', '{': '}' };
export const openerOf: Readonly<Record<string, string>> = { ')': '(', ']': '[', '}': '{' };

export interface Bracket {
  char: string;
  index: number;
  opening: boolean;
}

// biome-ignore format: a table reads better in rows
const hashCommentLanguages = new Set([
  'python', 'shellscript', 'sh', 'bash', 'zsh', 'ruby', 'perl', 'r', 'yaml', 'toml', 'makefile', 'dockerfile',
  'coffeescript', 'elixir', 'julia', 'nim', 'powershell', 'cmake',
]);

/** The line comment marker of a language id ('//' for the C family and anything unknown). */
export function lineCommentFor(languageId: string): string {
  if (hashCommentLanguages.has(languageId)) return '#';
  if (languageId === 'lua' || languageId === 'sql' || languageId === 'haskell') return '--';
  return '//';
}

/**
 * Calls `visit` for every bracket outside string literals and line comments, in order; `visit` returning
 * false stops the scan. Quotes ' and " end at a line end; template literals (`) may span lines.
 */
export function scanBrackets(text: string, visit: (bracket: Bracket) => boolean | void, lineComment = '//'): void {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      else if (c === '\n' && quote !== '`') quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c;
    } else if (text.startsWith(lineComment, i)) {
      const end = text.indexOf('\n', i);
      if (end < 0) return;
      i = end;
    } else if (c in closerOf || c in openerOf) {
      if (visit({ char: c, index: i, opening: c in closerOf }) === false) return;
    }
  }
}

/** The openers left unclosed at the end of `text`, innermost last (closers without an opener are ignored). */
export function unclosedOpeners(text: string, lineComment = '//'): string[] {
  const stack: string[] = [];
  scanBrackets(
    text,
    ({ char, opening }) => {
      if (opening) stack.push(char);
      else if (stack.at(-1) === openerOf[char]) stack.pop();
    },
    lineComment,
  );
  return stack;
}

/** Openers minus closers of one line (brackets in strings and comments do not count). */
export function bracketBalance(text: string, lineComment = '//'): number {
  let balance = 0;
  scanBrackets(text, ({ opening }) => void (balance += opening ? 1 : -1), lineComment);
  return balance;
}

/**
 * The closing brackets that the text after the cursor starts with, whitespace (line breaks too) skipped:
 * `)` for `foo(|)`, `}` for a cursor on an empty line before a closing brace.
 */
export function leadingClosers(suffix: string): string[] {
  const result: string[] = [];
  for (const c of suffix) {
    if (c in openerOf) result.push(c);
    else if (!/\s/.test(c)) break;
  }
  return result;
}
