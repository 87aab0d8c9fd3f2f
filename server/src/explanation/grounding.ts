// Grounds an explanation in the workspace: the identifiers of a piece of code, where each is defined and where it
// is used across the open documents and the workspace files. A plain identifier search with a few definition
// patterns (function, class, const, def, fn, methods …): no parser, but language-independent and fast.

export interface SourceFile {
  /** Display path, relative to the workspace when possible. */
  path: string;
  text: string;
}

export interface Reference {
  path: string;
  /** 0-based line. */
  line: number;
  /** The line, trimmed and shortened. */
  text: string;
}

export interface SymbolGrounding {
  name: string;
  definitions: Reference[];
  usages: Reference[];
  /** All usages found (usages holds only the first few). */
  usageCount: number;
}

export interface GroundingOptions {
  /** Lines of this file that are being explained: not counted as usages or definitions elsewhere. */
  exclude?: { path: string; startLine: number; endLine: number };
  /** Put this identifier first (the one under the cursor). */
  focus?: string;
  maxSymbols?: number;
  maxReferences?: number;
}

const KEYWORDS = new Set(
  (
    'abstract and as assert async await boolean break byte case catch char class const continue debugger def default ' +
    'del delete do double elif else enum except export extends false final finally float for from func function go ' +
    'goto if impl implements import in instanceof int interface is keyof lambda let long match mod module mut ' +
    'namespace native new nil none None not null number object of or package pass private protected pub public raise ' +
    'readonly return self short static str string struct super switch symbol synchronized this throw throws trait ' +
    'transient True true False try type typeof undefined unknown use var void volatile while with yield any never fn ' +
    'println console log length push'
  ).split(' '),
);

const IDENTIFIER = /[A-Za-z_$][\w$]*/g;

/** Identifiers of the code in order of first appearance, without keywords and one-letter names. */
export function identifiersIn(code: string): string[] {
  const seen = new Set<string>();
  for (const match of code.matchAll(IDENTIFIER)) {
    const name = match[0];
    if (name.length < 2 || KEYWORDS.has(name) || seen.has(name)) continue;
    seen.add(name);
  }
  return [...seen];
}

function escapeSnippet(name: string): string {
  return name.replace(/[$]/g, '\\$');
}

/** True when the line looks like it defines `name` (declaration keywords, methods, #define, self.name =). */
export function isDefinition(line: string, name: string): boolean {
  const n = escapeSnippet(name);
  const patterns = [
    new RegExp(
      '\\b(function\\*?|class|interface|type|enum|namespace|module|def|fn|func|struct|trait|union|' +
        `let|const|var|val|macro_rules!)\\s+${n}\\b`,
    ),
    new RegExp(
      '^\\s*(export\\s+)?(default\\s+)?' +
        '(public\\s+|private\\s+|protected\\s+|static\\s+|readonly\\s+|async\\s+|override\\s+|get\\s+|set\\s+)*' +
        `${n}\\s*(<[^>]*>)?\\s*\\([^)]*\\)?\\s*(:[^=;]*)?\\{\\s*$`,
    ),
    new RegExp(`^\\s*#\\s*define\\s+${n}\\b`),
    new RegExp(`^\\s*self\\.${n}\\s*=[^=]`),
    new RegExp(
      `^\\s*(export\\s+)?(readonly\\s+|private\\s+|public\\s+|protected\\s+|static\\s+)*${n}\\??\\s*:\\s*[^=]+;\\s*$`,
    ),
  ];
  return patterns.some((p) => p.test(line));
}

function shorten(line: string): string {
  const trimmed = line.trim();
  return trimmed.length > 120 ? `${trimmed.slice(0, 117)}…` : trimmed;
}

/** Definitions and usages of `names` in the sources, best-grounded symbols first. */
export function groundSymbols(
  names: readonly string[],
  sources: readonly SourceFile[],
  options: GroundingOptions = {},
): SymbolGrounding[] {
  const maxReferences = options.maxReferences ?? 4;
  const wanted = new Set(names);
  const found = new Map<string, SymbolGrounding>();
  for (const name of names) found.set(name, { name, definitions: [], usages: [], usageCount: 0 });
  const exclude = options.exclude;

  for (const source of sources) {
    const lines = source.text.split('\n');
    for (let line = 0; line < lines.length; line++) {
      if (exclude && source.path === exclude.path && line >= exclude.startLine && line <= exclude.endLine) continue;
      const text = lines[line];
      if (text.length > 1000) continue; // minified or data: not a place to learn from
      const seenOnLine = new Set<string>();
      for (const match of text.matchAll(IDENTIFIER)) {
        const name = match[0];
        if (!wanted.has(name) || seenOnLine.has(name)) continue;
        seenOnLine.add(name);
        const symbol = found.get(name)!;
        const reference = { path: source.path, line, text: shorten(text) };
        if (isDefinition(text, name)) {
          if (symbol.definitions.length < maxReferences) symbol.definitions.push(reference);
        } else {
          symbol.usageCount++;
          if (symbol.usages.length < maxReferences) symbol.usages.push(reference);
        }
      }
    }
  }

  const order = new Map(names.map((name, i) => [name, i]));
  return [...found.values()]
    .filter((s) => s.definitions.length > 0 || s.usageCount > 0)
    .sort((a, b) => {
      if (options.focus) {
        if (a.name === options.focus) return -1;
        if (b.name === options.focus) return 1;
      }
      // Defined names first; among them the specific ones (few definitions) before generic names like `text`.
      const defined = Number(b.definitions.length > 0) - Number(a.definitions.length > 0);
      const specific = Math.min(a.definitions.length, 3) - Math.min(b.definitions.length, 3);
      return defined || specific || b.usageCount - a.usageCount || order.get(a.name)! - order.get(b.name)!;
    })
    .slice(0, options.maxSymbols ?? 5);
}

/** Markdown lines describing the grounding, for the explanation and for a model's prompt. */
export function describeGrounding(symbols: readonly SymbolGrounding[]): string[] {
  return symbols.map((s) => {
    const where = (r: Reference) => `${r.path}:${r.line + 1}`;
    const definition = s.definitions.length
      ? `defined in ${s.definitions
          .slice(0, 2)
          .map((d) => `${where(d)} (\`${d.text}\`)`)
          .join(', ')}${s.definitions.length > 2 ? ` and ${s.definitions.length - 2} more` : ''}`
      : 'no definition found in the workspace';
    const usages = s.usageCount
      ? `; used ${s.usageCount}× elsewhere (${s.usages.map(where).join(', ')}` +
        `${s.usageCount > s.usages.length ? ', …' : ''})`
      : '; not used elsewhere';
    return `\`${s.name}\`: ${definition}${usages}`;
  });
}
