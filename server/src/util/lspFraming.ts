// A guard in front of the language server's stdio reader: passes through only well-framed base-protocol messages
// (a header block with one non-negative integer Content-Length, then that many bytes), drops broken header blocks
// and finds the next header after garbage. vscode-jsonrpc's reader takes "Content-Length: -5" as a length and then
// never reads a message again, and loses the framing for good after a stray line break.
import { Transform, type TransformCallback } from 'node:stream';

const HEADER_END = Buffer.from('\r\n\r\n');
/** Longest header block kept while waiting for its end; longer ones are dropped. */
const MAX_HEADER_BYTES = 64 * 1024;
/** Largest message accepted (a whole document's text fits many times). */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

export function guardLspFraming(onDropped: (reason: string) => void = () => {}): Transform {
  let pending: Buffer = Buffer.alloc(0);
  /** Bytes of the current message body still to pass through; -1 while reading a header block. */
  let bodyLeft = -1;

  const contentLength = (header: string): number | undefined => {
    let length: number | undefined;
    for (const line of header.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) return undefined;
      if (line.slice(0, colon).trim().toLowerCase() !== 'content-length') continue;
      const value = line.slice(colon + 1).trim();
      if (length !== undefined || !/^\d{1,12}$/.test(value)) return undefined;
      length = Number(value);
    }
    return length !== undefined && length <= MAX_BODY_BYTES ? length : undefined;
  };

  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        if (bodyLeft >= 0) {
          const take = Math.min(bodyLeft, pending.length);
          if (take > 0) this.push(pending.subarray(0, take));
          pending = pending.subarray(take);
          bodyLeft -= take;
          if (bodyLeft > 0) break;
          bodyLeft = -1;
        }
        const end = pending.indexOf(HEADER_END);
        if (end < 0) {
          if (pending.length > MAX_HEADER_BYTES) {
            onDropped(`a header of more than ${MAX_HEADER_BYTES} bytes`);
            pending = Buffer.alloc(0);
          }
          break;
        }
        const header = pending.subarray(0, end).toString('latin1');
        const length = contentLength(header);
        if (length === undefined) {
          // Garbage before a header (a short body's rest, stray line breaks): start again at the last Content-Length.
          const restart = header.toLowerCase().lastIndexOf('content-length:');
          onDropped(`${restart > 0 ? restart : end} bytes of broken framing: ${JSON.stringify(header.slice(0, 80))}`);
          if (restart > 0) {
            pending = pending.subarray(restart);
            continue;
          }
        } else {
          this.push(pending.subarray(0, end + HEADER_END.length));
          bodyLeft = length;
        }
        pending = pending.subarray(end + HEADER_END.length);
      }
      callback();
    },
  });
}
