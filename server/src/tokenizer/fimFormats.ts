// The fill-in-the-middle token spellings of the code-model families, so a completion prompt can show the model the
// text after the cursor the way it was trained to see it: prefix token, prefix, suffix token, suffix, middle token.

export interface FimFormat {
  /** Who uses this spelling. */
  family: string;
  prefix: string;
  suffix: string;
  middle: string;
}

export const fimFormats: readonly FimFormat[] = [
  // Qwen2.5-Coder, and every tokenizer Modelwright trains.
  { family: 'qwen', prefix: '<|fim_prefix|>', suffix: '<|fim_suffix|>', middle: '<|fim_middle|>' },
  // StarCoder, StarCoder2, SantaCoder.
  { family: 'starcoder', prefix: '<fim_prefix>', suffix: '<fim_suffix>', middle: '<fim_middle>' },
  // DeepSeek-Coder: <｜fim▁begin｜>prefix<｜fim▁hole｜>suffix<｜fim▁end｜>.
  { family: 'deepseek', prefix: '<｜fim▁begin｜>', suffix: '<｜fim▁hole｜>', middle: '<｜fim▁end｜>' },
];

export interface FimTokenIds {
  format: FimFormat;
  prefix: number;
  suffix: number;
  middle: number;
}

/** The first FIM format whose three tokens are all single tokens of this tokenizer. */
export function findFimTokens(tokenId: (token: string) => number | undefined): FimTokenIds | undefined {
  for (const format of fimFormats) {
    const prefix = tokenId(format.prefix);
    const suffix = tokenId(format.suffix);
    const middle = tokenId(format.middle);
    if (prefix !== undefined && suffix !== undefined && middle !== undefined) return { format, prefix, suffix, middle };
  }
  return undefined;
}
