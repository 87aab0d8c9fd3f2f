// Chooses the workspace context of a completion: definitions of the names near the cursor and of the file's
// imports, the ranges edited last in other files, and the windows most like the code before the cursor. The
// choice is made once per window of the cursor line and kept while the cursor stays in it, so the prompt's
// context (and the KV cache behind it) does not change between keystrokes.
import * as path from 'node:path';
import { identifiersIn } from '../explanation/grounding';
import { LruMap } from '../util/lruMap';
import { WINDOW_LINES, WINDOW_STRIDE } from './codeWindows';
import type { RecentEdits } from './recentEdits';
import { type WorkspaceIndex, definitionsIn } from './workspaceIndex';

export type SnippetKind = 'definition' | 'recentEdit' | 'retrieved';

export interface ContextSnippet {
  kind: SnippetKind;
  path: string;
  /** 0-based first line of `text` in its file. */
  startLine: number;
  text: string;
}

export interface ContextRequest {
  /** The document's key in the index (absolute path); its own file is never context. */
  key: string;
  text: string;
  offset: number;
}

export interface ContextLimits {
  definitions: number;
  recentEdits: number;
  retrieved: number;
}

export const defaultContextLimits: ContextLimits = { definitions: 4, recentEdits: 2, retrieved: 3 };

/** Lines above the cursor whose names are looked up. */
const NEAR_LINES = 6;
/** Names looked up at most. */
const MAX_NAMES = 12;
/** Lines shown around an edited range, and at most. */
const EDIT_MARGIN = 2;
const EDIT_MAX_LINES = 12;
/** A snippet whose lines are mostly in the current file already tells the model nothing new. */
const DUPLICATE_SHARE = 0.5;

export class WorkspaceContext {
  private readonly chosen = new LruMap<string, { window: number; snippets: ContextSnippet[] }>(32);

  constructor(
    private readonly index: WorkspaceIndex,
    private readonly edits?: RecentEdits,
    private readonly limits: ContextLimits = defaultContextLimits,
    /** While false (the first build runs), choices are not kept: the next keystroke chooses again. */
    private readonly isReady: () => boolean = () => true,
  ) {}

  /** The snippets for a cursor position: the same array while the cursor line stays in one window. */
  snippetsFor(request: ContextRequest): ContextSnippet[] {
    const cursorLine = lineOf(request.text, request.offset);
    const window = Math.floor(cursorLine / WINDOW_STRIDE);
    const kept = this.chosen.get(request.key);
    if (kept && kept.window === window) return kept.snippets;
    const snippets = this.choose(request, cursorLine);
    if (this.isReady()) this.chosen.set(request.key, { window, snippets });
    return snippets;
  }

  /** Forgets the choice for a document (closed, or its context must be chosen again). */
  forget(key: string): void {
    this.chosen.delete(key);
  }

  private choose(request: ContextRequest, cursorLine: number): ContextSnippet[] {
    const { key, text, offset } = request;
    const lines = text.slice(0, offset).split('\n');
    const fileLines = text.split('\n');
    const candidates: ContextSnippet[] = [];

    const imports = importsOf(text, key, this.index);
    const near: string[] = [];
    for (let i = lines.length - 1; i >= Math.max(0, lines.length - NEAR_LINES) && near.length < MAX_NAMES; i--)
      for (const name of identifiersIn(lines[i])) if (!near.includes(name)) near.push(name);
    const definedHere = new Set(definitionsIn(text).map((d) => d.name));
    const names = [...near, ...imports.names.filter((n) => !near.includes(n))]
      .filter((name) => !definedHere.has(name))
      .slice(0, MAX_NAMES);
    for (const d of this.index.definitions(names, {
      excludeKey: key,
      limit: this.limits.definitions,
      preferKeys: imports.keys,
    }))
      candidates.push({ kind: 'definition', path: d.path, startLine: d.line, text: d.text });

    let edits = 0;
    for (const range of this.edits?.newest() ?? []) {
      if (edits >= this.limits.recentEdits) break;
      if (range.key === key) continue;
      const source = this.index.textOf(range.key);
      const sourcePath = this.index.pathOf(range.key);
      if (source === undefined || sourcePath === undefined) continue; // not indexed: never shown
      const sourceLines = source.split('\n');
      const start = Math.max(0, range.startLine - EDIT_MARGIN);
      const end = Math.min(sourceLines.length, range.endLine + EDIT_MARGIN + 1, start + EDIT_MAX_LINES);
      const editText = sourceLines.slice(start, end).join('\n');
      if (!editText.trim()) continue;
      candidates.push({ kind: 'recentEdit', path: sourcePath, startLine: start, text: editText });
      edits++;
    }

    const query = lines.slice(Math.max(0, cursorLine - WINDOW_LINES)).join('\n');
    for (const w of this.index.retrieve(query, { excludeKey: key, limit: this.limits.retrieved + 2 }))
      candidates.push({ kind: 'retrieved', path: w.path, startLine: w.startLine, text: w.text });

    return deduplicate(candidates, fileLines, this.limits.retrieved);
  }
}

/** Drops snippets already in the current file or overlapping an earlier snippet; keeps `maxRetrieved` windows. */
function deduplicate(candidates: ContextSnippet[], fileLines: string[], maxRetrieved: number): ContextSnippet[] {
  const present = new Set(fileLines.map((l) => l.trim()).filter((l) => l.length > 0));
  const kept: ContextSnippet[] = [];
  let retrieved = 0;
  for (const snippet of candidates) {
    const lines = snippet.text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    const repeated = lines.filter((l) => present.has(l)).length;
    if (lines.length === 0 || repeated / lines.length >= DUPLICATE_SHARE) continue;
    const end = snippet.startLine + snippet.text.split('\n').length;
    const overlaps = kept.some(
      (k) =>
        k.path === snippet.path && k.startLine < end && snippet.startLine < k.startLine + k.text.split('\n').length,
    );
    if (overlaps) continue;
    if (snippet.kind === 'retrieved' && retrieved++ >= maxRetrieved) continue;
    kept.push(snippet);
  }
  return kept;
}

const IMPORT_FROM = /^\s*import\s+(?:type\s+)?([\w$*{},\s]+?)\s+from\s+['"]([^'"]+)['"]/gm;
const PYTHON_FROM = /^\s*from\s+([\w.]+)\s+import\s+([\w, ]+)/gm;
const RESOLVE_ENDINGS = ['', '.ts', '.tsx', '.mts', '.js', '.jsx', '.mjs', '/index.ts', '/index.tsx', '/index.js'];

/** The names a file imports and the indexed files its relative imports point at. */
export function importsOf(text: string, key: string, index: WorkspaceIndex): { names: string[]; keys: Set<string> } {
  const names: string[] = [];
  const keys = new Set<string>();
  const head = text.slice(0, 20_000);
  const resolve = (specifier: string) => {
    if (!specifier.startsWith('.')) return;
    const base = path.resolve(path.dirname(key), specifier);
    for (const ending of RESOLVE_ENDINGS) if (index.has(base + ending)) keys.add(base + ending);
  };
  for (const match of head.matchAll(IMPORT_FROM)) {
    resolve(match[2]);
    const clause = match[1].replace(/\*\s+as\s+[\w$]+/, '');
    for (const part of clause.replace(/[{}]/g, ',').split(',')) {
      const name = part
        .trim()
        .split(/\s+as\s+/)[0]
        .replace(/^type\s+/, '')
        .trim();
      if (/^[A-Za-z_$][\w$]*$/.test(name) && !names.includes(name)) names.push(name);
    }
  }
  for (const match of head.matchAll(PYTHON_FROM)) {
    if (match[1].startsWith('.'))
      resolve(match[1].replace(/^\.+/, './').replace(/\./g, '/').replace(/^\/\//, './') + '.py');
    for (const part of match[2].split(',')) {
      const name = part.trim().split(/\s+as\s+/)[0];
      if (name && !names.includes(name)) names.push(name);
    }
  }
  return { names, keys };
}

/** 0-based line of a character offset. */
export function lineOf(text: string, offset: number): number {
  let line = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
