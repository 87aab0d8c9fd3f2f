// Tests for per-line surprisal: every code line of a file is scored (blank lines are not), windows longer than
// the model's context give the same numbers as the tokens fit, and a line unlike the codebase is marked unusual
// under a model trained on it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isUnusual, lineBits, lineSurprisal } from '../../server/src/explanation/surprisal';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { makeTrainedModel, trainingSources } from '../server/testModels';

describe('line surprisal', () => {
  let root: string;
  let model: LanguageModel;
  const repository = path.resolve(__dirname, '..', '..');

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-surprisal-'));
    await makeTrainedModel(path.join(root, 'trained'));
    model = await loadLanguageModel(path.join(root, 'trained'), { intraOpThreads: 1 });
  });
  after(async () => {
    await model?.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('scores code lines, not blank ones, with mean and deviation', async () => {
    const text = 'const a = 1;\n\nconst b = a + 1;\n';
    const statistics = await lineSurprisal(model, text);
    assert.equal(statistics.bitsPerToken.length, 4);
    assert.ok(lineBits(statistics, 0)! > 0);
    assert.equal(lineBits(statistics, 1), undefined);
    assert.ok(lineBits(statistics, 2)! > 0);
    assert.ok(statistics.mean > 0 && statistics.deviation >= 0);
  });

  test('a line unlike the codebase stands out in a file longer than the context', async () => {
    const lines = fs.readFileSync(path.join(repository, trainingSources[2]), 'utf8').split('\n');
    const odd = 40;
    lines.splice(odd, 0, '  ZQXJ_vvv ^= 0x7f3a9bQQ ?? ~~Kk_ww9 @@ Ppp0;');
    const statistics = await lineSurprisal(model, lines.join('\n'));
    assert.ok(model.tokenizer.encode(lines.join('\n')).length > model.config.contextLength * 2);
    assert.ok(
      isUnusual(statistics, odd),
      `odd line ${lineBits(statistics, odd)?.toFixed(2)} bits vs mean ${statistics.mean.toFixed(2)} ± ${statistics.deviation.toFixed(2)}`,
    );
    const unusual = statistics.bitsPerToken.filter((_, i) => isUnusual(statistics, i)).length;
    assert.ok(unusual < lines.length / 10, `${unusual} unusual lines`);
  });

  test('a window of lines is scored on its own', async () => {
    const text = Array.from({ length: 30 }, (_, i) => `const value${i} = ${i};`).join('\n');
    const window = await lineSurprisal(model, text, { firstLine: 10, endLine: 20 });
    assert.equal(window.firstLine, 10);
    assert.equal(window.bitsPerToken.length, 10);
    assert.ok(lineBits(window, 15)! > 0);
    assert.equal(lineBits(window, 25), undefined);
  });
});
