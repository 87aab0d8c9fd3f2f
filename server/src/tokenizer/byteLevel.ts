// GPT-2's byte-level alphabet: every byte as a printable character, and the pre-tokenization pattern that
// splits text into words, numbers, symbols and whitespace runs before BPE merges apply.

/** GPT-2's pre-tokenization: contractions, letters, numbers, other symbols, whitespace runs. */
export const preTokenPattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's byte → printable character table: printable Latin-1 bytes map to themselves, the others to
 * U+0100 onwards, so every byte sequence is a string without spaces or control characters.
 */
export const byteToUnicode: readonly string[] = (() => {
  const table: string[] = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    table[byte] = String.fromCharCode(printable ? byte : next++);
  }
  return table;
})();

/** The inverse of byteToUnicode: byte-level character → byte. */
export const unicodeToByte: ReadonlyMap<string, number> = new Map(byteToUnicode.map((char, byte) => [char, byte]));

/** Byte-level string of a text: its UTF-8 bytes, each as its GPT-2 character. */
export function toByteLevel(text: string): string {
  let result = '';
  for (const byte of Buffer.from(text, 'utf8')) result += byteToUnicode[byte];
  return result;
}
