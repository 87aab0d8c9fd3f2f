// Keeps the workspace index current without ever blocking a completion: the first build walks the workspace
// folders in the background under the corpus rules (gitignore, secrets, generated and lock files, code files
// only), then open documents replace their file's windows as they change, and watched-file events re-read,
// add or drop single files. A file the first walk did not see waits for the next (debounced) walk, because
// only a walk knows the ignore rules that apply to it.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { collectCorpus, isCodeFile } from '../workspace/corpus';
import { findSecretInContent } from '../workspace/secrets';
import type { WorkspaceIndex } from './workspaceIndex';

export interface IndexerOptions {
  /** Files never indexed (absolute paths), e.g. the files an evaluation holds out. */
  isHeldOut?: (file: string) => boolean;
  log?: (message: string) => void;
  /** Wait after a new file appears before walking again. */
  rewalkDelayMs?: number;
}

/** Files added to the index between yields to the event loop during the first build. */
const FILES_PER_SLICE = 8;

export class WorkspaceIndexer {
  /** Absolute paths the last walk allowed. */
  private readonly allowed = new Set<string>();
  /** Open documents' current text, by absolute path (they win over the disk). */
  private readonly openTexts = new Map<string, string>();
  private building: Promise<void> | undefined;
  private rewalkTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  ready = false;

  constructor(
    private readonly roots: readonly string[],
    readonly index: WorkspaceIndex,
    private readonly options: IndexerOptions = {},
  ) {}

  /** Starts the first build in the background; the promise settles when it is done (it never rejects). */
  start(): Promise<void> {
    this.building ??= this.walk().then(() => {
      this.ready = true;
    });
    return this.building;
  }

  /** An open document's text changed (or it was opened). */
  documentChanged(file: string, text: string): void {
    this.openTexts.set(file, text);
    if (this.allowed.has(file)) this.put(file, text, true);
    else if (this.ready && this.underRoot(file) && isCodeFile(file)) this.scheduleRewalk();
  }

  /** An open document was closed: its file on disk is what counts again. */
  async documentClosed(file: string): Promise<void> {
    this.openTexts.delete(file);
    if (this.allowed.has(file)) await this.reread(file);
  }

  /** A watched-file event from the client. */
  async fileEvent(file: string, kind: 'created' | 'changed' | 'deleted'): Promise<void> {
    if (kind === 'deleted') {
      this.allowed.delete(file);
      this.index.removeFile(file);
      // A deleted folder arrives as one event: drop what was under it.
      const prefix = file.endsWith(path.sep) ? file : file + path.sep;
      for (const key of [...this.index.keys()]) {
        if (key.startsWith(prefix)) {
          this.allowed.delete(key);
          this.index.removeFile(key);
        }
      }
      return;
    }
    if (this.allowed.has(file)) {
      if (!this.openTexts.has(file)) await this.reread(file);
    } else if (this.underRoot(file)) this.scheduleRewalk();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.rewalkTimer);
  }

  /** The display path of a file: relative to the workspace folder holding it. */
  displayPath(file: string): string {
    for (const root of this.roots) {
      const relative = path.relative(root, file);
      if (!relative.startsWith('..') && !path.isAbsolute(relative)) return relative.split(path.sep).join('/');
    }
    return file;
  }

  private underRoot(file: string): boolean {
    return this.displayPath(file) !== file;
  }

  /** Indexes a file whose content passed the walk's rules; the content is checked for secrets every time. */
  private put(file: string, text: string, open: boolean): void {
    if (this.options.isHeldOut?.(file)) return;
    if (findSecretInContent(text)) {
      this.index.removeFile(file);
      return;
    }
    this.index.setFile(file, this.displayPath(file), text, open);
  }

  private async reread(file: string): Promise<void> {
    try {
      this.put(file, await fs.readFile(file, 'utf8'), false);
    } catch {
      this.index.removeFile(file);
    }
  }

  private scheduleRewalk(): void {
    if (this.rewalkTimer || this.disposed) return;
    this.rewalkTimer = setTimeout(() => {
      this.rewalkTimer = undefined;
      void this.walk();
    }, this.options.rewalkDelayMs ?? 3000);
    this.rewalkTimer.unref?.();
  }

  /** Walks every root; files no longer allowed leave the index, new and changed ones enter it. */
  private async walk(): Promise<void> {
    const started = performance.now();
    const seen = new Set<string>();
    for (const root of this.roots) {
      try {
        const corpus = await collectCorpus(root);
        let slice = 0;
        for (const file of corpus.files) {
          if (this.disposed) return;
          if (!isCodeFile(file.path)) continue;
          const absolute = path.join(root, ...file.path.split('/'));
          seen.add(absolute);
          this.allowed.add(absolute);
          this.put(absolute, this.openTexts.get(absolute) ?? file.text, this.openTexts.has(absolute));
          if (++slice % FILES_PER_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      } catch (e) {
        this.options.log?.(`workspace index: ${root} could not be read: ${e instanceof Error ? e.message : e}`);
      }
    }
    for (const key of [...this.allowed]) {
      if (!seen.has(key)) {
        this.allowed.delete(key);
        this.index.removeFile(key);
      }
    }
    if (this.index.skippedFiles > 0)
      this.options.log?.(`workspace index: ${this.index.skippedFiles} files left out (index size limit reached)`);
    this.options.log?.(
      `workspace index: ${this.index.fileCount} files, ${this.index.windowCount} windows ` +
        `in ${Math.round(performance.now() - started)} ms`,
    );
  }
}
