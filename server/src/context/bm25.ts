// Okapi BM25 over identifier tokens: an inverted index of term → (document → count) that documents join and leave
// one at a time. Small and direct because a completion's query is a whole window of code (dozens of distinct
// names), which general search libraries answer far too slowly for a keystroke.

/** The usual constants: term-frequency saturation and length normalisation. */
const K1 = 1.2;
const B = 0.75;

export class Bm25Index {
  private readonly postings = new Map<string, Map<number, number>>();
  private readonly lengths = new Map<number, number>();
  private readonly terms = new Map<number, string[]>();
  private totalLength = 0;

  add(id: number, tokens: readonly string[]): void {
    this.remove(id);
    const counts = new Map<string, number>();
    for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
    for (const [term, count] of counts) {
      let posting = this.postings.get(term);
      if (!posting) this.postings.set(term, (posting = new Map()));
      posting.set(id, count);
    }
    this.lengths.set(id, tokens.length);
    this.terms.set(id, [...counts.keys()]);
    this.totalLength += tokens.length;
  }

  remove(id: number): void {
    const terms = this.terms.get(id);
    if (!terms) return;
    for (const term of terms) {
      const posting = this.postings.get(term);
      posting?.delete(id);
      if (posting?.size === 0) this.postings.delete(term);
    }
    this.totalLength -= this.lengths.get(id) ?? 0;
    this.lengths.delete(id);
    this.terms.delete(id);
  }

  get size(): number {
    return this.lengths.size;
  }

  /** Ids containing `term`. */
  containing(term: string): IterableIterator<number> {
    return (this.postings.get(term) ?? new Map<number, number>()).keys();
  }

  /** Scores of the documents sharing a term with the query (each distinct term counted once). */
  search(queryTokens: readonly string[]): Map<number, number> {
    const scores = new Map<number, number>();
    const documents = this.lengths.size;
    if (documents === 0) return scores;
    const averageLength = this.totalLength / documents;
    for (const term of new Set(queryTokens)) {
      const posting = this.postings.get(term);
      if (!posting) continue;
      const idf = Math.log(1 + (documents - posting.size + 0.5) / (posting.size + 0.5));
      for (const [id, count] of posting) {
        const norm = K1 * (1 - B + (B * (this.lengths.get(id) ?? 0)) / averageLength);
        scores.set(id, (scores.get(id) ?? 0) + (idf * count * (K1 + 1)) / (count + norm));
      }
    }
    return scores;
  }
}
