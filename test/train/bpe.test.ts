// Tests the byte-level BPE trainer (vocabulary layout and size, merge order on a hand-checked example,
// pre-token and special-token boundaries), the written Hugging Face files, and the fast encoder's basics.
// Identity of the fast encoder with transformers.js is tested in test/runtime/tokenizer.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { byteToUnicode, toByteLevel } from '../../server/src/tokenizer/byteLevel';
import { createBpeEncoder } from '../../server/src/tokenizer/bpeEncoder';
import { specialTokenContents, specialTokens } from '../../server/src/tokenizer/specialTokens';
import { trainBpe } from '../../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../../server/src/tokenizer/tokenizerFiles';

/** Deterministic code-like text: identifiers, keywords, numbers, strings, indentation, a little unicode. */
function syntheticCode(lines: number, seed = 1): string {
  let state = seed;
  const random = (n: number): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  const words = [
    'const',
    'let',
    'return',
    'function',
    'if',
    'else',
    'for',
    'while',
    'import',
    'export',
    'class',
    'value',
    'count',
    'index',
    'result',
    'items',
    'map',
    'filter',
    'length',
    'push',
    'self',
    'def',
    'None',
    'true',
    'false',
    'await',
    'async',
    'this',
    'name',
    'größe',
    'données',
    '名前',
    'π',
  ];
  const symbols = [' = ', '(', ')', ' + ', ', ', ';', ' {', '}', '.', ' => ', ' === ', '[', ']', ': '];
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    let line = '  '.repeat(random(4));
    const tokens = 3 + random(8);
    for (let t = 0; t < tokens; t++) {
      const kind = random(10);
      if (kind < 5) line += words[random(words.length)] + (random(3) === 0 ? ' ' : '');
      else if (kind < 8) line += symbols[random(symbols.length)];
      else if (kind < 9) line += String(random(1000));
      else line += `"${words[random(words.length)]}"`;
    }
    out.push(line);
  }
  return out.join('\n') + '\n';
}

test('vocabulary layout: special tokens, then the 256 bytes, then merges, exactly vocabSize on enough text', () => {
  const texts = [syntheticCode(3000, 1), syntheticCode(3000, 2)];
  const trained = trainBpe(texts, { vocabSize: 700 });
  assert.equal(trained.vocab.length, 700);
  assert.equal(new Set(trained.vocab).size, 700, 'token strings are unique');
  assert.deepEqual(trained.vocab.slice(0, 5), [
    '<|endoftext|>',
    '<|fim_prefix|>',
    '<|fim_middle|>',
    '<|fim_suffix|>',
    '<|pad|>',
  ]);
  assert.deepEqual(
    trained.specialTokens.map((token) => [token.id, token.content]),
    [
      [0, '<|endoftext|>'],
      [1, '<|fim_prefix|>'],
      [2, '<|fim_middle|>'],
      [3, '<|fim_suffix|>'],
      [4, '<|pad|>'],
    ],
  );
  assert.equal(specialTokens.endOfText, 0);
  assert.equal(specialTokens.pad, 4);
  assert.equal(specialTokenContents.fimMiddle, '<|fim_middle|>');
  assert.deepEqual(trained.vocab.slice(5, 261), [...byteToUnicode]);
  assert.equal(trained.merges.length, 700 - 261);
  trained.merges.forEach(([a, b], i) => assert.equal(trained.vocab[261 + i], a + b));
  // Every merge uses tokens that existed before it.
  const known = new Set(trained.vocab.slice(0, 261));
  for (const [a, b] of trained.merges) {
    assert.ok(known.has(a) && known.has(b));
    known.add(a + b);
  }
  assert.ok(trained.statistics.preTokens > 0 && trained.statistics.distinctPreTokens > 0);
});

test('merges the most frequent pair first (hand-checked example)', () => {
  // Pre-tokens: "abababab" ×1, " cdcd" ×1, " e" ×1.
  // Pairs: ab 4, ba 3, cd 2, dc 1, Ġc 1, Ġe 1 → first merge a+b; then the word is ab ab ab ab: (ab,ab) 3 → ab+ab.
  const trained = trainBpe(['abababab cdcd e'], { vocabSize: 263, minFrequency: 1 });
  assert.deepEqual(trained.merges, [
    ['a', 'b'],
    ['ab', 'ab'],
  ]);
  assert.deepEqual(trained.vocab.slice(261), ['ab', 'abab']);
});

test('minFrequency stops training early rather than merging pairs seen once', () => {
  const trained = trainBpe(['abababab cdcd e'], { vocabSize: 1000, minFrequency: 2 });
  // ab (4), then ab+ab (3), then cd (2); after that no pair is seen twice.
  assert.deepEqual(trained.merges, [
    ['a', 'b'],
    ['ab', 'ab'],
    ['c', 'd'],
  ]);
  assert.equal(trained.vocab.length, 264);
});

test('merges never cross pre-token boundaries or special tokens', () => {
  const text = 'hello world, hello there<|endoftext|>hello world<|fim_prefix|>\n'.repeat(50);
  const trained = trainBpe([text], { vocabSize: 400 });
  for (const token of trained.vocab.slice(261)) {
    assert.ok(!/[a-z]Ġ/.test(token), `"${token}" spans a word boundary`);
    assert.ok(!token.includes('endoftext') && !token.includes('fim'), `"${token}" learned from a special token`);
  }
});

test('tokens named like Object.prototype members survive training and writing', async () => {
  const trained = trainBpe(['a.constructor(b.toString(), c.hasOwnProperty(d.valueOf));\n'.repeat(100)], {
    vocabSize: 330,
  });
  const risky = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'];
  for (const token of risky) assert.ok(trained.vocab.includes(token), token);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-bpe-'));
  try {
    writeTokenizerFiles(dir, trained, { modelMaxLength: 256 });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    for (const token of risky) assert.equal(json.model.vocab[token], trained.vocab.indexOf(token));
    assert.equal(Object.keys(json.model.vocab).length, trained.vocab.length);
    const encoder = createBpeEncoder(trained);
    assert.deepEqual(encoder.encode('toString'), [trained.vocab.indexOf('toString')]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('writeTokenizerFiles writes the Hugging Face layout', async () => {
  const trained = trainBpe([syntheticCode(500)], { vocabSize: 300 });
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-bpe-')), 'nested', 'model');
  try {
    writeTokenizerFiles(dir, trained, { modelMaxLength: 512 });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    assert.equal(json.model.type, 'BPE');
    assert.equal(Object.keys(json.model.vocab).length, 300);
    assert.equal(json.model.merges.length, trained.merges.length);
    assert.equal(json.model.merges[0], trained.merges[0].join(' '));
    assert.deepEqual(json.pre_tokenizer, {
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    });
    assert.equal(json.decoder.type, 'ByteLevel');
    assert.equal(json.post_processor.type, 'ByteLevel');
    assert.equal(json.added_tokens.length, 5);
    assert.ok(json.added_tokens.every((token: { special: boolean }) => token.special));
    assert.deepEqual(json.added_tokens[4], {
      id: 4,
      content: '<|pad|>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.tokenizer_class, 'GPT2Tokenizer');
    assert.equal(config.bos_token, '<|endoftext|>');
    assert.equal(config.eos_token, '<|endoftext|>');
    assert.equal(config.unk_token, '<|endoftext|>');
    assert.equal(config.pad_token, '<|pad|>');
    assert.equal(config.add_bos_token, false);
    assert.equal(config.add_prefix_space, false);
    assert.equal(config.model_max_length, 512);
    assert.equal(config.clean_up_tokenization_spaces, false);
    const merges = fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8').split('\n');
    assert.equal(merges[0], '#version: 0.2');
    assert.equal(Object.keys(JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'))).length, 300);
  } finally {
    fs.rmSync(path.dirname(path.dirname(dir)), { recursive: true, force: true });
  }
});

test('fast encoder: byte fallback, special tokens, lossless ids', () => {
  const trained = trainBpe([syntheticCode(2000)], { vocabSize: 500 });
  const encoder = createBpeEncoder(trained);
  assert.equal(encoder.vocabSize, 500);
  const text = 'const größe = "名前"; // never seen: ☃ \u0000\t\r\n<|endoftext|>x<|pad|>';
  const ids = encoder.encode(text);
  assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 500));
  assert.equal(ids.filter((id) => id === specialTokens.endOfText).length, 1);
  assert.equal(ids.filter((id) => id === specialTokens.pad).length, 1);
  // Joining the token strings gives back the byte-level text around the special tokens.
  const joined = ids.map((id) => trained.vocab[id]).join('');
  assert.equal(joined, toByteLevel('const größe = "名前"; // never seen: ☃ \u0000\t\r\n') + '<|endoftext|>x<|pad|>');
  assert.deepEqual(encoder.encode(text), ids, 'cached results are the same');
  assert.deepEqual(encoder.encode(''), []);
});

test('trainBpe validates vocabSize', () => {
  assert.throws(() => trainBpe(['x'], { vocabSize: 100 }), RangeError);
  assert.throws(() => trainBpe(['x'], { vocabSize: 300.5 }), RangeError);
});
