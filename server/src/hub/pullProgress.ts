// Progress of a pull: bytes done of the total, the download rate over the last few seconds, the time left and
// the file being fetched, handed to a callback at most ~10 times a second (and always at the end).

export interface PullProgress {
  phase: 'resolving' | 'downloading' | 'done';
  /** The file being downloaded or checked. */
  file?: string;
  filesDone: number;
  filesTotal: number;
  /** Bytes in place or verified, of all the files selected (files already present count too). */
  bytesDone: number;
  bytesTotal: number;
  /** Bytes fetched from the network in this pull (not those that were already on disk). */
  bytesDownloaded: number;
  /** Download rate over the last seconds, bytes/s (0 until known). */
  bytesPerSecond: number;
  /** Seconds left at that rate; undefined until a rate is known. */
  etaSeconds?: number;
}

const RATE_WINDOW_MS = 5000;

export class ProgressTracker {
  private state: PullProgress = {
    phase: 'resolving',
    filesDone: 0,
    filesTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    bytesDownloaded: 0,
    bytesPerSecond: 0,
  };
  private samples: { at: number; downloaded: number }[] = [];
  private lastEmit = -Infinity;

  constructor(
    private readonly emit: ((progress: PullProgress) => void) | undefined,
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {}

  get snapshot(): PullProgress {
    return { ...this.state };
  }

  resolving(): void {
    this.report(true);
  }

  start(filesTotal: number, bytesTotal: number): void {
    Object.assign(this.state, { phase: 'downloading', filesTotal, bytesTotal });
    this.samples = [{ at: this.now(), downloaded: 0 }];
    this.report(true);
  }

  file(path: string): void {
    this.state.file = path;
    this.report(false);
  }

  /** Counts bytes: `fromNetwork` for bytes just received, else bytes found on disk (negative to take back). */
  add(bytes: number, fromNetwork: boolean): void {
    this.state.bytesDone += bytes;
    if (fromNetwork) this.state.bytesDownloaded += bytes;
    this.report(false);
  }

  fileDone(): void {
    this.state.filesDone++;
    this.report(false);
  }

  /** Reports a pull that had nothing to do (offline): every file done at once. */
  finishAll(filesTotal: number, bytesTotal: number): void {
    Object.assign(this.state, { filesTotal, bytesTotal, filesDone: filesTotal, bytesDone: bytesTotal });
    this.finish();
  }

  finish(): void {
    this.state.phase = 'done';
    this.state.file = undefined;
    this.state.etaSeconds = 0;
    this.report(true, true);
  }

  private report(force: boolean, final = false): void {
    if (!this.emit) return;
    const now = this.now();
    if (!force && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    if (!final) this.updateRate(now);
    this.emit({ ...this.state });
  }

  private updateRate(now: number): void {
    this.samples.push({ at: now, downloaded: this.state.bytesDownloaded });
    while (this.samples.length > 2 && now - this.samples[1].at > RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    const seconds = (now - first.at) / 1000;
    if (seconds < 0.2) return;
    this.state.bytesPerSecond = (this.state.bytesDownloaded - first.downloaded) / seconds;
    const left = Math.max(0, this.state.bytesTotal - this.state.bytesDone);
    this.state.etaSeconds = this.state.bytesPerSecond > 0 ? left / this.state.bytesPerSecond : undefined;
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
