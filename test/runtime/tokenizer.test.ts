// Tests that transformers.js loads a tokenizer folder written by tokenizer/tokenizerFiles.ts offline (and other GPT-2
// layouts), that encode → decode round-trips exactly on code with unicode and odd whitespace, that the fast
// encoder gives transformers.js's ids, and that the streaming decoder's output equals the full decode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createBpeEncoder } from '../../server/src/tokenizer/bpeEncoder';
import { specialTokens } from '../../server/src/tokenizer/specialTokens';
import { trainBpe, type TrainedBpe } from '../../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../../server/src/tokenizer/tokenizerFiles';
import { createStreamingDecoder, loadTokenizer, type Tokenizer } from '../../server/src/runtime/tokenizer';

/** Training text: this repository's own TypeScript plus snippets in other languages and scripts. */
function trainingTexts(): string[] {
  const sourceRoot = path.join(__dirname, '../../server/src');
  const texts: string[] = [];
  const walk = (directory: string): void => {
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      const file = path.join(directory, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts')) texts.push(fs.readFileSync(file, 'utf8'));
    }
  };
  walk(sourceRoot);
  const snippets = [
    'def größe(données):\n    """Berechnet die Größe."""\n    return len(données)  # ✓\n',
    'fn main() {\n\tlet 名前 = "東京";\n\tprintln!("{名前}");\n}\n',
    'SELECT naïve_col, café FROM résumé WHERE x <> 1;\r\n',
  ];
  for (let i = 0; i < 20; i++) texts.push(...snippets);
  return texts;
}

/** Code with unicode and odd whitespace; none of it needs to have been seen in training. */
const samples = [
  'export function add(a: number, b: number): number {\n  return a + b;\n}\n',
  'const emoji = "👩‍💻 🚀 🇩🇪"; // zero-width joiner and flags\n',
  'tabs\tand\t\ttrailing spaces   \nCRLF line\r\nnbsp\u00a0here, line\u2028separator, bom\ufeffinside\n',
  '\n\n\n    \n\t\n  leading blank lines and a last line without newline',
  'x = \'single\' + "double" + `template ${1 + 2}`;  // ümlaut ä ö ü ß, Ελληνικά, русский, العربية, हिन्दी\n',
  'vertical\u000btab, form\u000cfeed, ideographic\u3000space, en\u2002space',
  'mixed <|endoftext|> special <|fim_prefix|>tokens<|fim_suffix|> inline<|fim_middle|><|pad|>',
  '   ',
  'a',
  '',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP: 𝟘𝟙𝟚 and an astral emoji 🦀\n',
  "contractions: it's we're they've I'm you'll he'd IT'S\n",
];

let workDir: string;
let modelDir: string;
let trained: TrainedBpe;
let tokenizer: Tokenizer;

before(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-tokenizer-'));
  modelDir = path.join(workDir, 'model');
  trained = trainBpe(trainingTexts(), { vocabSize: 1200 });
  writeTokenizerFiles(modelDir, trained, { modelMaxLength: 256 });
  tokenizer = await loadTokenizer(modelDir);
});

after(() => {
  tokenizer?.dispose();
  fs.rmSync(workDir, { recursive: true, force: true });
});

test('loads the written folder offline with its special tokens', async () => {
  const transformers = await import('@huggingface/transformers');
  assert.equal(transformers.env.allowRemoteModels, false);
  assert.equal(tokenizer.vocabSize, 1200);
  assert.equal(tokenizer.eosTokenId, specialTokens.endOfText);
  assert.equal(tokenizer.tokenId('<|endoftext|>'), 0);
  assert.equal(tokenizer.tokenId('<|fim_prefix|>'), 1);
  assert.equal(tokenizer.tokenId('<|fim_middle|>'), 2);
  assert.equal(tokenizer.tokenId('<|fim_suffix|>'), 3);
  assert.equal(tokenizer.tokenId('<|pad|>'), 4);
  assert.equal(tokenizer.tokenId('Ġreturn'), trained.vocab.indexOf('Ġreturn'));
  assert.equal(tokenizer.tokenId('no such token'), undefined);
  assert.equal(tokenizer.byteLevel, true);
  assert.equal(tokenizer.encoder, 'fast');
  assert.deepEqual(tokenizer.encode('<|endoftext|>'), [0]);
  assert.deepEqual(tokenizer.encode(''), []);
  assert.equal(tokenizer.decode([]), '');
  // A relative path works too.
  const relative = await loadTokenizer(path.relative(process.cwd(), modelDir));
  assert.deepEqual(relative.encode(samples[0]), tokenizer.encode(samples[0]));
});

test('encode → decode round-trips exactly on code with unicode and odd whitespace', () => {
  for (const sample of samples) {
    const ids = tokenizer.encode(sample);
    assert.equal(tokenizer.decode(ids), sample, JSON.stringify(sample));
  }
  const special = tokenizer.encode(samples[6]);
  assert.deepEqual(
    special.filter((id) => id < 5),
    [0, 1, 3, 2, 4],
  );
  assert.equal(tokenizer.decode(special, { skipSpecialTokens: true }), 'mixed  special tokens inline');
});

test('the fast encoder gives exactly the ids transformers.js gives', async () => {
  const reference = await loadTokenizer(modelDir, { fastEncode: false });
  assert.equal(reference.encoder, 'transformers.js');
  const fast = createBpeEncoder(trained);
  const texts = [...samples, ...trainingTexts().slice(0, 30)];
  for (const text of texts) {
    const expected = reference.encode(text);
    assert.deepEqual(fast.encode(text), expected, JSON.stringify(text.slice(0, 60)));
    assert.deepEqual(tokenizer.encode(text), expected);
  }
  reference.dispose();
  assert.throws(() => reference.encode('x'), /disposed/);
});

test('loads other GPT-2 folder layouts: tokenizer.json alone, vocab.json + merges.txt, a GPT-2-like config', async () => {
  const expected = samples.map((sample) => tokenizer.encode(sample));
  const copy = (name: string, files: string[]): string => {
    const dir = path.join(workDir, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const file of files) fs.copyFileSync(path.join(modelDir, file), path.join(dir, file));
    return dir;
  };
  const onlyJson = copy('only-tokenizer-json', ['tokenizer.json']);
  const slowFiles = copy('vocab-and-merges', ['vocab.json', 'merges.txt', 'special_tokens_map.json']);
  // As GPT-2's own folder: a "Fast" class name and clean-up on, which must not alter decoded code.
  const gpt2Like = copy('gpt2-like', ['tokenizer.json']);
  fs.writeFileSync(
    path.join(gpt2Like, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'GPT2TokenizerFast',
      bos_token: '<|endoftext|>',
      eos_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
      add_prefix_space: false,
      model_max_length: 1024,
      clean_up_tokenization_spaces: true,
    }),
  );
  for (const dir of [onlyJson, slowFiles, gpt2Like]) {
    for (const fastEncode of [true, false]) {
      const other = await loadTokenizer(dir, { fastEncode });
      assert.equal(other.eosTokenId, 0, dir);
      assert.equal(other.vocabSize, 1200, dir);
      samples.forEach((sample, i) => {
        assert.deepEqual(other.encode(sample), expected[i], `${dir} ${JSON.stringify(sample)}`);
        assert.equal(other.decode(expected[i]), sample, `${dir} ${JSON.stringify(sample)}`);
      });
      other.dispose();
    }
  }
  // Original GPT-2 files alone: only <|endoftext|> is special.
  const bare = await loadTokenizer(copy('bare-gpt2-files', ['vocab.json', 'merges.txt']));
  assert.equal(bare.eosTokenId, 0);
  assert.deepEqual(bare.encode(samples[0] + '<|endoftext|>'), [...expected[0], 0]);
  assert.ok(bare.encode('<|pad|>').length > 1);
  await assert.rejects(loadTokenizer(path.join(workDir, 'missing')), /no tokenizer/);
});

/** Pushes ids one by one and returns the chunks, the final flush last. */
function stream(target: Tokenizer, ids: number[]): string[] {
  const decoder = createStreamingDecoder(target);
  return [...ids.map((id) => decoder.push(id)), decoder.flush()];
}

/** Ids of single-byte tokens for the given bytes (ids 5..260 are the bytes in order). */
const byteIds = (...bytes: number[]): number[] => bytes.map((byte) => 5 + byte);

test('streaming decoder output equals the full decode, never splitting a character', () => {
  const emoji = byteIds(...Buffer.from('🦀', 'utf8'));
  const cases: number[][] = [
    ...samples.map((sample) => tokenizer.encode(sample)),
    [...tokenizer.encode('crab: '), ...emoji, ...tokenizer.encode(' done')],
    [...emoji.slice(0, 2), specialTokens.endOfText, ...tokenizer.encode('x')], // cut by a special token
    [...emoji.slice(0, 3)], // cut by the end
    byteIds(0xef, 0xbb, 0xbf, 0x41, 0xff, 0x42), // BOM bytes and an invalid byte
  ];
  for (const ids of cases) {
    const chunks = stream(tokenizer, ids);
    assert.equal(chunks.join(''), tokenizer.decode(ids), JSON.stringify(ids));
  }
  // A 4-byte character pushed byte by byte appears whole, in the chunk of its last byte.
  const chunks = stream(tokenizer, [...tokenizer.encode('a'), ...emoji]);
  assert.deepEqual(chunks, ['a', '', '', '', '🦀', '']);
  for (const sample of samples) {
    for (const chunk of stream(tokenizer, tokenizer.encode(sample))) assert.ok(!chunk.includes('\uFFFD'));
  }
});

test('streaming decoder for tokenizers that are not byte-level equals the full decode', () => {
  // Same tokenizer seen only through decode(): exercises the windowed fallback.
  const opaque: Tokenizer = { ...tokenizer, byteLevel: false, tokenBytes: () => undefined };
  const emoji = byteIds(...Buffer.from('🦀', 'utf8'));
  for (const ids of [
    ...samples.map((sample) => tokenizer.encode(sample)),
    [...tokenizer.encode('crab: '), ...emoji, ...tokenizer.encode(' done')],
  ]) {
    const chunks = stream(opaque, ids);
    assert.equal(chunks.join(''), tokenizer.decode(ids));
    for (const chunk of chunks) assert.ok(!chunk.includes('\uFFFD'));
  }
});
