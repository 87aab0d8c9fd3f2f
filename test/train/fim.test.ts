// Fill-in-the-middle training data: documents cut (the middle ending at a line boundary) at the configured rate,
// deterministic in the seed; PSM and SPM examples decode back to the original text once their parts are put back
// in order; and prepareData makes half the training files FIM examples by default while validation stays left to
// right.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer } from '../../server/src/runtime/tokenizer';
import { findFimTokens } from '../../server/src/tokenizer/fimFormats';
import { specialTokenContents } from '../../server/src/tokenizer/specialTokens';
import { encodeWithFim, fimSplit } from '../../server/src/train/fim';
import { prepareData } from '../../server/src/train/trainingData';

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-fim-'));
after(() => fs.rmSync(workDir, { recursive: true, force: true }));

/** Small TypeScript files of 4 to 30 lines. */
function sourceFiles(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const lines = [`// module ${i}`, `export function f${i}(x: number): number {`];
    for (let j = 0; j < (i * 7) % 27; j++) lines.push(`  x = x * ${j + 1} + ${i}; // step ${j}`);
    lines.push('  return x;', '}', '');
    return lines.join('\n');
  });
}

test('middles end on line boundaries, put back together give the text, and follow the seed', () => {
  const texts = sourceFiles(200);
  const options = { rate: 0.5, spmRate: 0.5, seed: 7 };
  let cut = 0;
  let spm = 0;
  texts.forEach((text, index) => {
    const split = fimSplit(text, index, options);
    assert.deepEqual(split, fimSplit(text, index, options), 'deterministic');
    if (!split) return;
    cut++;
    if (split.order === 'spm') spm++;
    assert.ok(split.middle.length > 0, 'the middle is at least one line');
    assert.equal(split.prefix + split.middle + split.suffix, text);
    assert.ok(split.suffix === '' || split.middle.endsWith('\n'), 'the middle ends at a line boundary');
  });
  assert.ok(cut > 70 && cut < 130, `${cut} of 200 documents cut at rate 0.5`);
  assert.ok(spm > cut * 0.3 && spm < cut * 0.7, `${spm} of ${cut} in SPM order`);
  assert.notDeepEqual(
    texts.map((text, i) => fimSplit(text, i, { ...options, seed: 8 })),
    texts.map((text, i) => fimSplit(text, i, options)),
  );
  assert.equal(
    texts.filter((text, i) => fimSplit(text, i, { ...options, rate: 0 })).length,
    0,
    'rate 0: no FIM examples',
  );
  assert.equal(fimSplit('one line only', 0, { ...options, rate: 1 }), undefined);
});

test('PSM and SPM examples of a real tokenizer decode back to the document', async () => {
  const modelDir = path.join(__dirname, '../../models/default');
  const tokenizer = await loadTokenizer(modelDir);
  const tokens = findFimTokens((token) => tokenizer.tokenId(token))!;
  assert.ok(tokens, 'the shipped tokenizer has FIM tokens');
  const encode = (text: string) => tokenizer.encode(text);
  const [prefixToken, suffixToken, middleToken] = [tokens.prefix, tokens.suffix, tokens.middle];
  const texts = sourceFiles(60);
  const { documents, fimDocuments } = encodeWithFim(texts, encode, tokens, { rate: 1, spmRate: 0.5, seed: 3 });
  assert.ok(fimDocuments > 50);
  const orders = new Set<string>();
  documents.forEach((ids, index) => {
    const text = texts[index];
    if (ids[0] !== prefixToken) {
      assert.equal(tokenizer.decode(ids), text);
      return;
    }
    const suffixAt = ids.indexOf(suffixToken);
    const middleAt = ids.indexOf(middleToken);
    const decode = (from: number, to: number) => tokenizer.decode(ids.slice(from, to));
    if (suffixAt === 1) {
      orders.add('spm'); // <prefix> <suffix> S <middle> P M: the prefix and the middle follow each other
      assert.equal(decode(middleAt + 1, ids.length) + decode(2, middleAt), text);
    } else {
      orders.add('psm'); // <prefix> P <suffix> S <middle> M
      assert.equal(decode(1, suffixAt) + decode(middleAt + 1, ids.length) + decode(suffixAt + 1, middleAt), text);
    }
  });
  assert.deepEqual([...orders].sort(), ['psm', 'spm']);
  tokenizer.dispose();
});

test('prepareData: half the training files become FIM examples, validation stays left to right', async () => {
  const workspace = path.join(workDir, 'workspace');
  sourceFiles(80).forEach((text, i) => {
    fs.mkdirSync(path.join(workspace, 'src'), { recursive: true });
    fs.writeFileSync(path.join(workspace, 'src', `m${i}.ts`), text);
  });
  const prepare = (out: string, fimRate?: number) =>
    prepareData({ workspace, out: path.join(workDir, out), fimRate }, { seed: 1, preset: 'tiny' }, () => {});
  const data = await prepare('default');
  const tokenizer = await loadTokenizer(path.join(workDir, 'default'));
  const fimPrefix = tokenizer.tokenId(specialTokenContents.fimPrefix)!;
  const count = (stream: Int32Array) => stream.filter((id) => id === fimPrefix).length;
  const trainFiles = data.snapshot.files.filter((f) => f.split === 'train').length;
  assert.equal(data.snapshot.fim?.rate, 0.5);
  assert.equal(data.snapshot.fim?.format, 'qwen');
  assert.equal(count(data.trainTokens), data.snapshot.fim?.documents);
  assert.ok(data.snapshot.fim!.documents > trainFiles * 0.25 && data.snapshot.fim!.documents < trainFiles * 0.75);
  assert.equal(count(data.validationTokens), 0);
  tokenizer.dispose();

  const plain = await prepare('plain', 0);
  assert.equal(plain.snapshot.fim?.rate, 0);
  assert.equal(plain.snapshot.fim?.documents, 0);
  assert.deepEqual(plain.validationTokens, data.validationTokens, 'the same held-out stream either way');
});
