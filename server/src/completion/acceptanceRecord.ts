// The local acceptance record of inline suggestions, per model: answers shown, suggestions accepted whole (the
// item's command ran) and accepted only in part (the document took a start of the suggestion in one change, as
// word-by-word acceptance does). Kept in memory and in a file beside the models; never sent anywhere.
import * as fs from 'node:fs';
import type { AcceptanceFigures } from '../protocol';
import { writeFileAtomic } from '../util/atomicFile';
import { LruMap } from '../util/lruMap';

interface ShownAnswer {
  model: string;
  uri: string;
  /** Cursor offset where the suggestions start. */
  offset: number;
  texts: string[];
  outcome?: 'accepted' | 'partial';
}

type Counts = Omit<AcceptanceFigures, 'acceptanceRate'>;

/** Answers still waiting for an acceptance (older ones are only counted as shown). */
const PENDING = 64;

export class AcceptanceRecord {
  private readonly pending = new LruMap<string, ShownAnswer>(PENDING);
  private readonly counts = new Map<string, Counts>();
  private nextId = 1;
  private listener: (() => void) | undefined;
  private saveTimer: NodeJS.Timeout | undefined;

  /** `file`: where the record is kept between sessions (absent: memory only). */
  constructor(private readonly file?: string) {
    if (!file) return;
    try {
      const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { models?: Record<string, Counts> };
      for (const [model, c] of Object.entries(saved.models ?? {}))
        if ([c.shown, c.accepted, c.partiallyAccepted].every(Number.isFinite)) this.counts.set(model, { ...c });
    } catch {
      // no record yet, or an unreadable one: start over
    }
  }

  /** Called after every change of the figures. */
  onDidChange(listener: () => void): void {
    this.listener = listener;
  }

  /** Records an answer with suggestions; returns the id its items' command carries. */
  shown(model: string, uri: string, offset: number, texts: string[]): string {
    const id = String(this.nextId++);
    this.pending.set(id, { model, uri, offset, texts });
    this.bump(model, 'shown');
    return id;
  }

  /** The item's command ran: the suggestion was taken whole. */
  accepted(id: string): void {
    const answer = this.pending.get(id);
    if (!answer || answer.outcome === 'accepted') return;
    if (answer.outcome === 'partial') this.bump(answer.model, 'partiallyAccepted', -1);
    answer.outcome = 'accepted';
    this.bump(answer.model, 'accepted');
  }

  /**
   * A document change: text inserted at a shown answer's offset that is a start of one of its suggestions, two
   * characters or more in one change (a keystroke inserts one), counts as a partial acceptance.
   */
  documentChanged(uri: string, offset: number, inserted: string): void {
    if (inserted.length < 2) return;
    for (const [, answer] of this.pending.newestFirst()) {
      if (answer.uri !== uri || answer.outcome || answer.offset !== offset) continue;
      if (answer.texts.some((t) => t.length > inserted.length && t.startsWith(inserted))) {
        answer.outcome = 'partial';
        this.bump(answer.model, 'partiallyAccepted');
      }
      return;
    }
  }

  figures(): Record<string, AcceptanceFigures> {
    const result: Record<string, AcceptanceFigures> = {};
    for (const [model, c] of this.counts)
      result[model] = { ...c, acceptanceRate: c.shown > 0 ? c.accepted / c.shown : 0 };
    return result;
  }

  private bump(model: string, field: keyof Counts, by = 1): void {
    const c = this.counts.get(model) ?? { shown: 0, accepted: 0, partiallyAccepted: 0 };
    c[field] += by;
    this.counts.set(model, c);
    this.scheduleSave();
    this.listener?.();
  }

  /** Writes the record a moment after a change (not on every keystroke's answer). */
  private scheduleSave(): void {
    if (!this.file || this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.save(), 2000);
    this.saveTimer.unref?.();
  }

  save(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (!this.file) return;
    try {
      writeFileAtomic(this.file, `${JSON.stringify({ models: Object.fromEntries(this.counts) }, null, 2)}\n`);
    } catch {
      // the record in memory still counts
    }
  }
}
