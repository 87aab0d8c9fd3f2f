// A one-line progress display for the terminal: redrawn in place on a TTY, printed as plain lines at most
// every few seconds otherwise (CI logs, pipes), and always once at the end (100% for a run that finished).
// No escape codes when the stream is not a TTY; NO_COLOR keeps the plain carriage-return redraw only.
export class ProgressBar {
  private lastPlainLine = 0;
  private readonly tty: boolean;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainIntervalMs = 5000,
    private readonly now: () => number = Date.now,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(fraction: number, text: string): void {
    const clamped = Math.max(0, Math.min(1, fraction));
    if (this.tty) {
      const width = 24;
      const filled = Math.round(clamped * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const columns = this.stream.columns ?? 120;
      this.stream.write(`\r${bar} ${text}`.slice(0, columns - 1).padEnd(columns - 1));
      this.drawn = true;
    } else if (this.now() - this.lastPlainLine >= this.plainIntervalMs) {
      this.lastPlainLine = this.now();
      this.stream.write(`${percent(clamped)} ${text}\n`);
    }
  }

  /** The last update: always shown (100% for a run that finished), and the line is ended. */
  finish(fraction: number, text: string): void {
    if (this.tty) {
      this.update(fraction, text);
      this.stream.write('\n');
      this.drawn = false;
    } else {
      this.stream.write(`${percent(Math.max(0, Math.min(1, fraction)))} ${text}\n`);
    }
  }

  /** Ends the bar's line and prints a message on its own line. */
  log(message: string): void {
    if (this.tty && this.drawn) {
      const columns = this.stream.columns ?? 120;
      this.stream.write(`\r${' '.repeat(columns - 1)}\r`);
      this.drawn = false;
    }
    this.stream.write(message + '\n');
  }
}

const percent = (fraction: number) => `${Math.floor(fraction * 100)}%`;
