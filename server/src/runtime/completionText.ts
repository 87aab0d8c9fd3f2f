// The text of one completion as its tokens arrive: incremental decoding, stop sequences (the text ends before
// the first one) and the part that is safe to stream (text that might still become a stop sequence is held).
// One implementation for every path that decodes: runtime generate() (the editor), the HTTP batch scheduler and
// the remote Open Inference Protocol client. Also the rule for a prompt's final space.
import { type Tokenizer, createStreamingDecoder, type StreamingDecoder } from './tokenizer';

export type TextFinish = 'stop' | 'eos' | 'length';

export class CompletionText {
  /** Decoded text so far, cut before a stop sequence once one is found. */
  text = '';
  /** Set when the completion is over. */
  finish: TextFinish | undefined;
  /** Tokens pushed, end-of-text included. */
  tokens = 0;
  private streamed = 0;
  private readonly decoder: StreamingDecoder;
  private readonly stops: string[];
  private readonly longestStop: number;

  constructor(
    tokenizer: Tokenizer,
    stops: readonly string[],
    private readonly maxTokens: number,
    /** Ids that end the text (end-of-text); empty to ignore them. */
    private readonly endIds: ReadonlySet<number>,
  ) {
    this.decoder = createStreamingDecoder(tokenizer);
    this.stops = stops.filter((s) => s.length > 0);
    this.longestStop = this.stops.reduce((n, s) => Math.max(n, s.length), 0);
  }

  /**
   * Adds a generated id; `roomLeft` is false when the context is full. Returns the text that became final and
   * may be streamed (all that is left once the completion is over).
   */
  push(id: number, roomLeft = true): string {
    if (this.finish) throw new Error('the completion is over');
    this.tokens++;
    if (this.endIds.has(id)) {
      this.finish = 'eos';
    } else {
      const before = this.text.length;
      this.text += this.decoder.push(id);
      const at = this.findStop(Math.max(0, before - this.longestStop + 1));
      if (at >= 0) {
        this.text = this.text.slice(0, at);
        this.finish = 'stop';
      }
    }
    if (!this.finish && (this.tokens >= this.maxTokens || !roomLeft)) this.finish = 'length';
    if (this.finish && this.finish !== 'stop') this.text += this.decoder.flush();
    return this.take();
  }

  /** Ends the completion early (timeout, cancellation) and returns the rest of the text. */
  end(): string {
    if (!this.finish) {
      this.text += this.decoder.flush();
      this.finish = 'length';
    }
    return this.take();
  }

  private take(): string {
    const end = this.finish ? this.text.length : this.text.length - this.heldBack();
    if (end <= this.streamed) return '';
    const fresh = this.text.slice(this.streamed, end);
    this.streamed = end;
    return fresh;
  }

  private findStop(from: number): number {
    let best = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, from);
      if (at >= 0 && (best < 0 || at < best)) best = at;
    }
    return best;
  }

  /** Length of the longest end of the text that begins a stop sequence. */
  private heldBack(): number {
    let held = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, this.text.length); k > held; k--) {
        if (this.text.endsWith(stop.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}

/**
 * The prompt without its final space. Byte-level and SentencePiece tokenizers join a space to the word after it
 * (" return", "▁return"), so a prompt that ends in one is spelled as training text never was (after indentation
 * the model then writes ` *` junk); the model writes the space itself, and the caller drops it from the output.
 */
export function withoutLastSpace(text: string): string {
  return text.endsWith(' ') ? text.slice(0, -1) : text;
}
