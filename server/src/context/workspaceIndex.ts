// The workspace index: every indexed file cut into code windows, searched with BM25 over identifier tokens,
// and a table of where names are defined (grounding's definition patterns). A file is replaced or removed on its
// own, so edits never rebuild the index; the text held is bounded.
import { Bm25Index } from './bm25';
import { isDefinition } from '../explanation/grounding';
import { type CodeWindow, WINDOW_LINES, WINDOW_STRIDE, codeWindows, identifierTokens } from './codeWindows';

export interface IndexOptions {
  /** Most characters of file text held (files beyond it are not indexed). */
  maxChars?: number;
  windowLines?: number;
  windowStride?: number;
}

export interface RetrievedWindow extends CodeWindow {
  /** The file's key (absolute path). */
  key: string;
  score: number;
}

export interface Definition {
  key: string;
  path: string;
  name: string;
  /** The definition's first line, 0-based. */
  line: number;
  /** The definition line and the lines after it that belong to it (a few at most). */
  text: string;
}

interface IndexedFile {
  key: string;
  path: string;
  text: string;
  windowIds: number[];
  /** Names this file defines (keys of `definitionSites`). */
  defines: string[];
  /** Open in the editor (its windows rank a little higher). */
  open: boolean;
}

interface StoredWindow extends CodeWindow {
  key: string;
}

/** Keywords of the common languages: in nearly every window, they would only slow the search down. */
const COMMON_WORDS = new Set(
  (
    'as async await break case catch class const continue default def delete do else elif enum export extends ' +
    'false finally for from function if import in instanceof interface let new null of private protected public ' +
    'readonly return self static super switch this throw true try type typeof undefined var void while with yield ' +
    'None True False pass fn pub use mut impl struct'
  ).split(' '),
);

/** The tokens a window is searched by: its identifiers, lower-cased, without keywords. */
function searchTerms(text: string): string[] {
  return identifierTokens(text)
    .filter((t) => !COMMON_WORDS.has(t))
    .map((t) => t.toLowerCase());
}

/** Default bound on the text held: 16 MB of characters (the windows and the search index take about as much). */
export const DEFAULT_MAX_CHARS = 16 * 1024 * 1024;
/** Windows of open files score this much higher (the file beside this one is the likeliest context). */
const OPEN_FILE_BOOST = 1.25;
/** Lines of a definition shown after its first line. */
const DEFINITION_LINES = 6;

export class WorkspaceIndex {
  private readonly files = new Map<string, IndexedFile>();
  private readonly windows = new Map<number, StoredWindow>();
  private readonly search = new Bm25Index();
  /** Name → where indexed files define it. */
  private readonly definitionSites = new Map<string, { key: string; line: number }[]>();
  private nextId = 0;
  private chars = 0;
  /** Files that did not fit under maxChars. */
  skippedFiles = 0;
  readonly maxChars: number;
  private readonly windowLines: number;
  private readonly windowStride: number;

  constructor(options: IndexOptions = {}) {
    this.maxChars = options.maxChars ?? DEFAULT_MAX_CHARS;
    this.windowLines = options.windowLines ?? WINDOW_LINES;
    this.windowStride = options.windowStride ?? WINDOW_STRIDE;
  }

  /** Indexes (or re-indexes) one file; false when it does not fit under the bound. */
  setFile(key: string, path: string, text: string, open?: boolean): boolean {
    const previous = this.files.get(key);
    if (previous?.text === text && previous.path === path) {
      if (open !== undefined) previous.open = open;
      return true;
    }
    const wasOpen = previous?.open ?? false;
    this.removeFile(key);
    if (this.chars + text.length > this.maxChars) {
      this.skippedFiles++;
      return false;
    }
    const windows = codeWindows(path, text, this.windowLines, this.windowStride);
    const ids: number[] = [];
    for (const window of windows) {
      const id = this.nextId++;
      ids.push(id);
      this.windows.set(id, { ...window, key });
      this.search.add(id, searchTerms(window.text));
    }
    const defines: string[] = [];
    for (const { name, line } of definitionsIn(text)) {
      const sites = this.definitionSites.get(name) ?? [];
      if (sites.length === 0) this.definitionSites.set(name, sites);
      sites.push({ key, line });
      defines.push(name);
    }
    this.files.set(key, { key, path, text, windowIds: ids, defines, open: open ?? wasOpen });
    this.chars += text.length;
    return true;
  }

  removeFile(key: string): void {
    const file = this.files.get(key);
    if (!file) return;
    for (const id of file.windowIds) {
      this.search.remove(id);
      this.windows.delete(id);
    }
    for (const name of new Set(file.defines)) {
      const sites = this.definitionSites.get(name)?.filter((site) => site.key !== key) ?? [];
      if (sites.length > 0) this.definitionSites.set(name, sites);
      else this.definitionSites.delete(name);
    }
    this.files.delete(key);
    this.chars -= file.text.length;
  }

  setOpen(key: string, open: boolean): void {
    const file = this.files.get(key);
    if (file) file.open = open;
  }

  has(key: string): boolean {
    return this.files.has(key);
  }

  textOf(key: string): string | undefined {
    return this.files.get(key)?.text;
  }

  pathOf(key: string): string | undefined {
    return this.files.get(key)?.path;
  }

  keys(): IterableIterator<string> {
    return this.files.keys();
  }

  get fileCount(): number {
    return this.files.size;
  }

  get windowCount(): number {
    return this.windows.size;
  }

  get indexedChars(): number {
    return this.chars;
  }

  /** The windows most like `query` (BM25 over identifiers), best first, never from `excludeKey`. */
  retrieve(query: string, options: { excludeKey?: string; limit?: number } = {}): RetrievedWindow[] {
    const limit = options.limit ?? 4;
    // Each distinct name once: BM25 weighs a query term by its rarity, not by how often the query repeats it.
    const scored: { id: number; score: number; window: StoredWindow }[] = [];
    for (const [id, score] of this.search.search(searchTerms(query))) {
      const window = this.windows.get(id);
      if (!window || window.key === options.excludeKey) continue;
      const boost = this.files.get(window.key)?.open ? OPEN_FILE_BOOST : 1;
      scored.push({ id, score: score * boost, window });
    }
    // Ties (the same score) keep a stable order: by path, then line.
    scored.sort(
      (a, b) =>
        b.score - a.score ||
        (a.window.path < b.window.path
          ? -1
          : a.window.path > b.window.path
            ? 1
            : a.window.startLine - b.window.startLine),
    );
    const results = scored.slice(0, limit).map(({ score, window }) => ({ ...window, score }));
    return results;
  }

  /** Where `names` are defined in the indexed files (other than `excludeKey`), in the order of `names`. */
  definitions(
    names: readonly string[],
    options: { excludeKey?: string; limit?: number; preferKeys?: ReadonlySet<string> } = {},
  ): Definition[] {
    const limit = options.limit ?? 4;
    const found: Definition[] = [];
    for (const name of names) {
      if (found.length >= limit) break;
      const sites = (this.definitionSites.get(name) ?? []).filter((site) => site.key !== options.excludeKey);
      if (sites.length === 0) continue;
      const preferred = sites.find((site) => options.preferKeys?.has(site.key));
      // A name defined in many places is generic (`text`, `options`): its definitions tell little.
      if (!preferred && sites.length > 2) continue;
      const site =
        preferred ??
        sites
          .map((s) => ({ ...s, path: this.files.get(s.key)!.path }))
          .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.line - b.line))[0];
      const path = this.files.get(site.key)!.path;
      found.push({ key: site.key, path, name, line: site.line, text: this.definitionText(site.key, site.line) });
    }
    return found;
  }

  /** The definition line and the following lines until a blank line or the end of the block, a few at most. */
  private definitionText(key: string, line: number): string {
    const lines = (this.files.get(key)?.text ?? '').split('\n');
    const first = lines[line] ?? '';
    const indent = first.length - first.trimStart().length;
    const kept = [first];
    for (let i = line + 1; i < lines.length && kept.length <= DEFINITION_LINES; i++) {
      const text = lines[i];
      if (text.trim() === '') break;
      kept.push(text);
      if (text.length - text.trimStart().length <= indent) break; // the closing line of the block
    }
    return kept.join('\n');
  }
}

/** A line that may declare a name: a declaration keyword, or a method-like `name(…) {` line. */
const DECLARATION =
  /\b(?:function\*?|class|interface|type|enum|namespace|module|def|fn|func|struct|trait|union|let|const|var|val)\s+([A-Za-z_$][\w$]*)|^\s*(?:(?:export|default|public|private|protected|static|readonly|async|override|get|set)\s+)*([A-Za-z_$][\w$]*)\s*(?:<[^>]*>)?\s*\(/g;

/** The names a text defines and their lines (grounding's definition patterns decide). */
export function definitionsIn(text: string): { name: string; line: number }[] {
  const found: { name: string; line: number }[] = [];
  const lines = text.split('\n');
  for (let line = 0; line < lines.length; line++) {
    const textLine = lines[line];
    if (textLine.length > 1000) continue;
    for (const match of textLine.matchAll(DECLARATION)) {
      const name = match[1] ?? match[2];
      if (name && name.length > 1 && isDefinition(textLine, name)) found.push({ name, line });
    }
  }
  return found;
}
