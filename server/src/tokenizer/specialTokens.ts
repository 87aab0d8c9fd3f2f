// The special tokens of every tokenizer Modelwright trains (end of text, fill-in-the-middle, padding), which
// take its first ids, and the splitting of a text around special token strings.

/** Ids of the special tokens, which take the first ids of every tokenizer trained here. */
export const specialTokens = { endOfText: 0, fimPrefix: 1, fimMiddle: 2, fimSuffix: 3, pad: 4 } as const;

/** The text of each special token. */
export const specialTokenContents = {
  endOfText: '<|endoftext|>',
  fimPrefix: '<|fim_prefix|>',
  fimMiddle: '<|fim_middle|>',
  fimSuffix: '<|fim_suffix|>',
  pad: '<|pad|>',
} as const;

export interface SpecialToken {
  id: number;
  content: string;
}

export const specialTokenList: SpecialToken[] = (Object.keys(specialTokens) as (keyof typeof specialTokens)[])
  .map((name) => ({ id: specialTokens[name], content: specialTokenContents[name] }))
  .sort((a, b) => a.id - b.id);

/** Splits text around special token strings (longest match first, like transformers.js); specials included. */
export function splitAroundSpecialTokens(
  tokens: readonly SpecialToken[],
): (text: string) => { text: string; special?: SpecialToken }[] {
  const byContent = new Map(tokens.map((token) => [token.content, token]));
  const escaped = [...byContent.keys()]
    .sort((a, b) => b.length - a.length)
    .map((content) => content.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(escaped.join('|'), 'g');
  const first = [...byContent.keys()].map((content) => content[0]);
  return (text) => {
    if (!first.some((char) => text.includes(char))) return [{ text }];
    const parts: { text: string; special?: SpecialToken }[] = [];
    let start = 0;
    pattern.lastIndex = 0;
    for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
      if (match.index > start) parts.push({ text: text.slice(start, match.index) });
      parts.push({ text: match[0], special: byContent.get(match[0]) });
      start = match.index + match[0].length;
    }
    if (start < text.length) parts.push({ text: text.slice(start) });
    return parts;
  };
}
