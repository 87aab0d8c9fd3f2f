// Writes a trained tokenizer into a model folder in the Hugging Face layout (tokenizer.json and
// tokenizer_config.json for transformers.js; vocab.json, merges.txt, special_tokens_map.json for Python),
// each file atomically.
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomicFile';
import type { BpeModel } from './bpeEncoder';
import { specialTokenContents, specialTokens } from './specialTokens';

export interface WriteTokenizerOptions {
  /** Longest sequence the model accepts (its n_positions). */
  modelMaxLength: number;
}

/** The Hugging Face tokenizer.json for a trained tokenizer. */
export function tokenizerJson(trained: BpeModel): object {
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: trained.specialTokens.map((token) => ({
      id: token.id,
      content: token.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      // Object.fromEntries defines own properties, so no token can clash with Object.prototype members.
      vocab: Object.fromEntries(trained.vocab.map((token, id) => [token, id])),
      // "a b" strings: byte-level tokens never contain a space, and every tokenizers version reads this form.
      merges: trained.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/**
 * Writes the tokenizer into a model folder: tokenizer.json and tokenizer_config.json (what transformers.js
 * reads), plus vocab.json, merges.txt and special_tokens_map.json for Python's slow GPT2Tokenizer.
 */
export function writeTokenizerFiles(dir: string, trained: BpeModel, options: WriteTokenizerOptions): void {
  const special = new Map(trained.specialTokens.map((token) => [token.id, token.content]));
  const endOfText = special.get(specialTokens.endOfText) ?? specialTokenContents.endOfText;
  const pad = special.get(specialTokens.pad) ?? specialTokenContents.pad;
  const additional = trained.specialTokens
    .map((token) => token.content)
    .filter((content) => content !== endOfText && content !== pad);
  const tokenizerConfig = {
    tokenizer_class: 'GPT2Tokenizer',
    bos_token: endOfText,
    eos_token: endOfText,
    unk_token: endOfText,
    pad_token: pad,
    additional_special_tokens: additional,
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    model_max_length: options.modelMaxLength,
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    added_tokens_decoder: Object.fromEntries(
      trained.specialTokens.map((token) => [
        String(token.id),
        { content: token.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  };
  const specialTokensMap = {
    bos_token: endOfText,
    eos_token: endOfText,
    unk_token: endOfText,
    pad_token: pad,
    additional_special_tokens: additional,
  };
  const write = (name: string, content: string): void => writeFileAtomic(path.join(dir, name), content);
  write('tokenizer.json', JSON.stringify(tokenizerJson(trained), null, 1) + '\n');
  write('tokenizer_config.json', JSON.stringify(tokenizerConfig, null, 2) + '\n');
  write('special_tokens_map.json', JSON.stringify(specialTokensMap, null, 2) + '\n');
  write('vocab.json', JSON.stringify(Object.fromEntries(trained.vocab.map((token, id) => [token, id]))) + '\n');
  write('merges.txt', ['#version: 0.2', ...trained.merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n');
}
