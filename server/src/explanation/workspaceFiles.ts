// The texts an explanation is grounded in: the open documents (their current, unsaved text) and the source files
// of the workspace folders (collected like a training corpus: gitignore honoured, secrets never read), the
// latter cached for a short while since walking a workspace takes a moment.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectCorpus } from '../workspace/corpus';
import type { SourceFile } from './grounding';

const CACHE_MS = 30_000;

export interface OpenDocument {
  uri: string;
  getText(): string;
}

export class WorkspaceFiles {
  private readonly cache = new Map<string, { at: number; files: Promise<SourceFile[]> }>();

  constructor(private readonly roots: readonly string[]) {}

  /** A display path: relative to the workspace folder that holds the file, else the path or URI. */
  displayPath(uri: string): string {
    const file = filePath(uri);
    return file ? this.relativePath(file) : uri;
  }

  /** A file system path relative to the workspace folder that holds it, else unchanged. */
  relativePath(file: string): string {
    for (const root of this.roots) {
      const relative = path.relative(root, file);
      if (!relative.startsWith('..') && !path.isAbsolute(relative)) return relative.split(path.sep).join('/');
    }
    return file;
  }

  /** Open documents first, then workspace files that are not open. */
  async sources(openDocuments: readonly OpenDocument[]): Promise<SourceFile[]> {
    const open = openDocuments.map((d) => ({ path: this.displayPath(d.uri), text: d.getText() }));
    const openPaths = new Set(open.map((d) => d.path));
    const workspace = (await Promise.all(this.roots.map((root) => this.filesOf(root)))).flat();
    return [...open, ...workspace.filter((f) => !openPaths.has(f.path))];
  }

  private filesOf(root: string): Promise<SourceFile[]> {
    const cached = this.cache.get(root);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.files;
    const files = collectCorpus(root)
      .then((corpus) => corpus.files.map((f) => ({ path: this.relativePath(path.join(root, f.path)), text: f.text })))
      .catch(() => [] as SourceFile[]);
    this.cache.set(root, { at: Date.now(), files });
    return files;
  }
}

/** The file system path of a file: URI, or undefined for other schemes. */
export function filePath(uri: string): string | undefined {
  if (!uri.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}
