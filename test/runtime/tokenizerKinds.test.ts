// Tokenizers other than GPT-2's: real SentencePiece models (BPE with byte fallback as Llama/Mistral ship them, and
// Unigram) trained by Debian's sentencepiece, whose own ids on held-out code are the reference for ours; and
// byte-level BPE with the Qwen2 / Llama 3 pre-tokenizer regexes, which must not go through the GPT-2 fast encoder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainBpe } from '../../server/src/train/bpeTrainer';
import { tokenizerJson } from '../../server/src/tokenizer/tokenizerFiles';
import { createStreamingDecoder, loadTokenizer } from '../../server/src/runtime/tokenizer';

const repository = path.join(__dirname, '../..');
const sources = (folder: string): string[] =>
  fs
    .readdirSync(path.join(repository, 'server/src', folder))
    .filter((name) => name.endsWith('.ts'))
    .sort()
    .map((name) => fs.readFileSync(path.join(repository, 'server/src', folder, name), 'utf8'));

/** Trained on two folders of this repository's code; the samples come from others. */
const trainingText = [...sources('train'), ...sources('hub'), ...sources('registry')].join('\n');
const heldOutFiles = [...sources('serve'), ...sources('completion')];
const snippets = [
  'def größe(données):\n    """Berechnet die Größe."""\n    return len(données)  # ✓\n',
  'const crab = "🦀"; // an emoji the training text never had, spelled with byte fallback\n',
  'numbers 12345 + 678.9e10 - 0x1F\ttabs\t\tand   spaces\n',
];

interface Expected {
  text: string;
  ids: number[];
  decoded: string;
}

let workDir: string;

/** Trains a SentencePiece model with the project's script and returns its folder. */
function sentencePieceFolder(modelType: 'bpe' | 'unigram', samples: string[]): string {
  const out = path.join(workDir, modelType);
  fs.writeFileSync(path.join(workDir, `${modelType}-samples.json`), JSON.stringify(samples));
  execFileSync(
    '/usr/bin/python3',
    [
      path.join(repository, 'scripts/makeSentencePieceTokenizers.py'),
      ...['--train', path.join(workDir, 'train.txt'), '--samples', path.join(workDir, `${modelType}-samples.json`)],
      ...['--out', out, '--model-type', modelType, '--vocab-size', '800'],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return out;
}

const readExpected = (folder: string): Expected[] =>
  JSON.parse(fs.readFileSync(path.join(folder, 'expected.json'), 'utf8')) as Expected[];

before(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-tokenizer-kinds-'));
  fs.writeFileSync(path.join(workDir, 'train.txt'), trainingText);
});

after(() => fs.rmSync(workDir, { recursive: true, force: true }));

test("SentencePiece BPE with byte fallback (Llama's layout): SentencePiece's ids on held-out code, exact decode", async () => {
  const folder = sentencePieceFolder('bpe', [...heldOutFiles, ...snippets]);
  const tokenizer = await loadTokenizer(folder);
  assert.equal(tokenizer.encoder, 'transformers.js');
  assert.equal(tokenizer.byteLevel, false);
  const expected = readExpected(folder);
  let tokens = 0;
  for (const { text, ids, decoded } of expected) {
    assert.deepEqual(tokenizer.encode(text), ids, JSON.stringify(text.slice(0, 60)));
    assert.equal(tokenizer.decode(ids), decoded);
    assert.equal(decoded, text, 'identity normalization: decoding gives the text back');
    tokens += ids.length;
  }
  assert.ok(tokens > 5000, `only ${tokens} tokens compared`);
  // The emoji is spelled as four byte tokens; streaming never shows half of it.
  for (const { ids, text } of expected.slice(-3)) {
    const decoder = createStreamingDecoder(tokenizer);
    const chunks = ids.map((id) => decoder.push(id));
    chunks.push(decoder.flush());
    assert.equal(chunks.join(''), text);
    for (const chunk of chunks) assert.ok(!chunk.includes('\uFFFD'), JSON.stringify(chunk));
  }
  tokenizer.dispose();
});

test("SentencePiece Unigram with a Metaspace pre-tokenizer: SentencePiece's ids on held-out lines", async () => {
  // SentencePiece trains line by line, so a Unigram model has no newline piece; a run of spaces is split by the
  // Metaspace pre-tokenizer differently from SentencePiece itself (as in Hugging Face's own conversion). The
  // samples are therefore single lines with single spaces.
  const lines = heldOutFiles
    .flatMap((file) => file.split('\n'))
    .map((line) => line.trim().replace(/\s+/g, ' '))
    .filter((line) => line.length > 0);
  const folder = sentencePieceFolder('unigram', lines);
  const tokenizer = await loadTokenizer(folder);
  assert.equal(tokenizer.encoder, 'transformers.js');
  const unknown = tokenizer.tokenId('<unk>');
  let compared = 0;
  let ties = 0;
  for (const { text, ids, decoded } of readExpected(folder)) {
    if (ids.includes(unknown!)) continue; // a character the training text never had: SentencePiece spells it ⁇
    const ours = tokenizer.encode(text);
    assert.equal(tokenizer.decode(ids), decoded);
    compared++;
    if (JSON.stringify(ours) === JSON.stringify(ids)) continue;
    // Equal-scoring segmentations (")" + "))" or "))" + ")") are broken differently by the two Viterbi searches.
    assert.equal(ours.length, ids.length, JSON.stringify(text));
    assert.equal(tokenizer.decode(ours), decoded);
    ties++;
  }
  assert.ok(compared > 500, `only ${compared} lines compared`);
  assert.ok(ties / compared < 0.02, `${ties} of ${compared} lines differ by a tie`);
  tokenizer.dispose();
});

/** Byte-level BPE trained here, re-dressed with another family's pre-tokenizer. */
function writeByteLevelFolder(name: string, preTokenizer: object): string {
  const trained = trainBpe([trainingText], { vocabSize: 600 });
  const json = { ...(tokenizerJson(trained) as Record<string, unknown>), pre_tokenizer: preTokenizer };
  const folder = path.join(workDir, name);
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'tokenizer.json'), JSON.stringify(json));
  fs.writeFileSync(
    path.join(folder, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'Qwen2Tokenizer', clean_up_tokenization_spaces: false }),
  );
  return folder;
}

const splitThenByteLevel = (pattern: string) => ({
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
  ],
});

test('byte-level BPE with the Qwen2 and Llama 3 regexes goes through the library, digits split as the regex says', async () => {
  const letters = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+`;
  const tail = String.raw`| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
  const families = {
    qwen2: { pattern: `${letters}|\\p{N}${tail}`, digits: 1 },
    llama3: { pattern: `${letters}|\\p{N}{1,3}${tail}`, digits: 3 },
  };
  for (const [name, { pattern, digits }] of Object.entries(families)) {
    const tokenizer = await loadTokenizer(writeByteLevelFolder(name, splitThenByteLevel(pattern)));
    assert.equal(tokenizer.encoder, 'transformers.js', `${name} must not use the GPT-2 fast encoder`);
    assert.equal(tokenizer.byteLevel, true);
    const number = '1234567';
    const pieces = tokenizer.encode(number).map((id) => tokenizer.decode([id]));
    assert.ok(
      pieces.every((piece) => piece.length <= digits),
      `${name}: ${JSON.stringify(pieces)}`,
    );
    for (const text of [...heldOutFiles.slice(0, 5), ...snippets]) {
      assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
    }
    tokenizer.dispose();
  }
});
