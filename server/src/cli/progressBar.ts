// A one-line progress display for the terminal: redrawn in place on a TTY, printed as plain lines at most
// every few seconds otherwise (CI logs, pipes).
export class ProgressBar {
  private lastPlainLine = 0;
  private readonly tty: boolean;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainIntervalMs = 5000,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(fraction: number, text: string): void {
    if (this.tty) {
      const width = 24;
      const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const columns = this.stream.columns ?? 120;
      this.stream.write(`\r${bar} ${text}`.slice(0, columns - 1).padEnd(columns - 1));
    } else if (Date.now() - this.lastPlainLine >= this.plainIntervalMs) {
      this.lastPlainLine = Date.now();
      this.stream.write(`${Math.round(fraction * 100)}% ${text}\n`);
    }
  }

  /** Ends the bar's line and prints a message on its own line. */
  log(message: string): void {
    if (this.tty) this.stream.write('\r\x1b[K');
    this.stream.write(message + '\n');
  }
}
