// The baseline that completion quality is compared with: a character n-gram model (8 characters: 7 of context)
// trained on the same files as the language model, with back-off to shorter contexts, completing a line greedily.
// A model that cannot beat it has learned less about the code base than counting does.

export class CharacterNgramModel {
  /** Context lengths used, longest first (back-off order). */
  private readonly lengths: number[];
  /** Per context length: context → the most frequent next character and its count. */
  private readonly best: Map<string, { char: string; count: number }>[];
  /** Per context length: context + next character → count. */
  private readonly counts: Map<string, number>[];

  constructor(readonly order = 8) {
    const longest = Math.max(1, order - 1);
    this.lengths = [...new Set([longest, Math.ceil(longest * 0.6), Math.ceil(longest * 0.3), 1])];
    this.best = this.lengths.map(() => new Map());
    this.counts = this.lengths.map(() => new Map());
  }

  train(texts: Iterable<string>): this {
    for (const text of texts) {
      for (let i = 1; i < text.length; i++) {
        const next = text[i];
        this.lengths.forEach((length, level) => {
          if (i < length) return;
          const context = text.slice(i - length, i);
          const key = context + next;
          const count = (this.counts[level].get(key) ?? 0) + 1;
          this.counts[level].set(key, count);
          const best = this.best[level].get(context);
          if (!best || count > best.count) this.best[level].set(context, { char: next, count });
        });
      }
    }
    return this;
  }

  /** The most likely next character after `text`, from the longest context seen in training. */
  next(text: string): string | undefined {
    for (let level = 0; level < this.lengths.length; level++) {
      const length = this.lengths[level];
      if (text.length < length) continue;
      const best = this.best[level].get(text.slice(text.length - length));
      if (best) return best.char;
    }
    return undefined;
  }

  /** The rest of the line after `prefix`, character by character (at most `maxChars`). */
  completeLine(prefix: string, maxChars = 120): string {
    let text = prefix;
    let line = '';
    while (line.length < maxChars) {
      const char = this.next(text);
      if (char === undefined || char === '\n') break;
      line += char;
      text += char;
    }
    return line;
  }
}
