// Cuts a source file into overlapping windows of lines (20 lines, a new one every 10, as RepoCoder does), the
// units the workspace index retrieves, and splits code into the identifier tokens the retriever compares.

export interface CodeWindow {
  /** Display path of the file (relative to its workspace folder). */
  path: string;
  /** First line, 0-based. */
  startLine: number;
  /** Line after the last one. */
  endLine: number;
  text: string;
}

export const WINDOW_LINES = 20;
export const WINDOW_STRIDE = 10;

const IDENTIFIER = /[A-Za-z_$][\w$]*/g;
const HAS_IDENTIFIER = /[A-Za-z_$]/;

/** The identifiers of a text, in order, repeats included (what BM25 counts). */
export function identifierTokens(text: string): string[] {
  return text.match(IDENTIFIER) ?? [];
}

/** Windows of `lines` lines every `stride` lines; the last one ends at the end of the file. */
export function codeWindows(path: string, text: string, lines = WINDOW_LINES, stride = WINDOW_STRIDE): CodeWindow[] {
  const all = text.split('\n');
  const windows: CodeWindow[] = [];
  for (let start = 0; start < all.length; start += stride) {
    const end = Math.min(all.length, start + lines);
    const windowText = all.slice(start, end).join('\n');
    if (HAS_IDENTIFIER.test(windowText)) windows.push({ path, startLine: start, endLine: end, text: windowText });
    if (end === all.length) break;
  }
  return windows;
}
