// Atomic file writes: a temp file in the same folder, fsync, then rename, so a crash or `kill -9` leaves either
// the old file or the new one, never half of one. Every model folder file, card and checkpoint is written so.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes a file so that readers see either the previous content or the new one, even after a crash. */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(temp, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
}
