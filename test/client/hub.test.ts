// Tests the pure parts of Download Model and Set Hugging Face Token (client/src/hubChoices.ts): the recommended
// models' quick pick, typed repository ids and URLs, the precisions, the redaction of the token from logs; the
// protocol's recommendations; and how the Models tree describes a downloaded model (client/src/format.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ModelSummary,
  RECOMMENDED_MODELS,
  isHubRepoId,
  isValidModelName,
  pullDtypes,
  pulledModelName,
} from '../../server/src/protocol';
import {
  approximateSize,
  dtypeChoices,
  parseRepository,
  redactSecrets,
  repositoryChoices,
} from '../../client/src/hubChoices';
import { describeModel, describeOrigin, modelFacts, modelTooltip } from '../../client/src/format';

const pulled: ModelSummary = {
  name: 'onnx-community--Qwen2.5-Coder-0.5B-Instruct-q8',
  path: '/models/onnx-community--Qwen2.5-Coder-0.5B-Instruct-q8',
  kind: 'causal-lm',
  bundled: false,
  sizeBytes: 650_000_000,
  status: 'idle',
  roles: [],
  modelType: 'qwen2',
  dtype: 'q8',
  contextLength: 32768,
  fillInTheMiddle: true,
  chat: true,
  license: 'apache-2.0',
  origin: {
    repo: 'onnx-community/Qwen2.5-Coder-0.5B-Instruct',
    revision: 'main',
    commit: '7cb8f6b0123456789abcdef0123456789abcdef0',
  },
};

test('the recommended models are valid hub ids with names, sizes and notes, for both roles', () => {
  assert.ok(RECOMMENDED_MODELS.length >= 5);
  for (const model of RECOMMENDED_MODELS) {
    assert.ok(isHubRepoId(model.repo), model.repo);
    assert.ok(isValidModelName(pulledModelName(model.repo, 'main', model.dtype)), model.repo);
    assert.ok(pullDtypes.includes(model.dtype));
    assert.ok(model.approximateBytes > 1e8 && model.approximateBytes < 1e10, `${model.repo} size`);
    assert.ok(model.note.length > 10 && !model.note.includes('\n'), `${model.repo} note`);
  }
  assert.deepEqual(new Set(RECOMMENDED_MODELS.map((m) => m.purpose)), new Set(['completion', 'explanation']));
  assert.equal(new Set(RECOMMENDED_MODELS.map((m) => m.repo)).size, RECOMMENDED_MODELS.length);
});

test('the quick pick shows approximate sizes and purposes, marks downloaded models, and ends with "enter"', () => {
  const choices = repositoryChoices(RECOMMENDED_MODELS, [pulled]);
  assert.equal(choices.length, RECOMMENDED_MODELS.length + 1);
  const instruct = choices.find((c) => c.label === 'onnx-community/Qwen2.5-Coder-0.5B-Instruct')!;
  assert.equal(instruct.description, '~650 MB · for explanations · downloaded');
  assert.equal(instruct.model?.dtype, 'q8');
  const coder = choices.find((c) => c.label === 'Qwen/Qwen2.5-Coder-0.5B')!;
  assert.equal(coder.description, '~1.0 GB · for completions');
  assert.match(coder.detail ?? '', /fill-in-the-middle/);
  assert.equal(choices.at(-1)?.model, undefined);
  assert.match(choices.at(-1)!.label, /Enter a repository id/);
  assert.equal(approximateSize(270_000_000), '~270 MB');
});

test('a typed repository is owner/name, owner/name@revision or a hub URL', () => {
  assert.deepEqual(parseRepository(' Qwen/Qwen2.5-Coder-0.5B '), { repo: 'Qwen/Qwen2.5-Coder-0.5B' });
  assert.deepEqual(parseRepository('acme/coder@v1.2'), { repo: 'acme/coder', revision: 'v1.2' });
  assert.deepEqual(parseRepository('acme/coder@main'), { repo: 'acme/coder' });
  assert.deepEqual(parseRepository('https://huggingface.co/HuggingFaceTB/SmolLM2-135M'), {
    repo: 'HuggingFaceTB/SmolLM2-135M',
  });
  assert.deepEqual(parseRepository('https://huggingface.co/acme/coder/tree/dev/onnx'), {
    repo: 'acme/coder',
    revision: 'dev',
  });
  assert.deepEqual(parseRepository('https://hf-mirror.example/acme/coder?x=1'), { repo: 'acme/coder' });
  for (const bad of ['', 'coder', 'acme/coder/extra', 'a--b/c', 'acme/co..der', 'acme/coder@', 'acme/coder@a b']) {
    const parsed = parseRepository(bad);
    assert.ok('error' in parsed, `${JSON.stringify(bad)} is refused`);
  }
});

test('the precisions put the suggested one first and say that q4 is for chat models', () => {
  assert.deepEqual(
    dtypeChoices().map((c) => c.label),
    ['fp32', 'q8', 'q4'],
  );
  const choices = dtypeChoices('q8');
  assert.deepEqual(
    choices.map((c) => c.label),
    ['q8', 'fp32', 'q4'],
  );
  assert.equal(choices[0].description, 'suggested');
  assert.equal(choices[1].description, '');
  assert.match(choices[2].detail, /explanations \(chat models\) only/);
});

test('secrets are redacted from log text', () => {
  const token = 'hf_abcdefghijklmnop';
  const traced = `Params: {"hubToken":"${token}","trusted":true} and again ${token}`;
  assert.equal(redactSecrets(traced, [token]), 'Params: {"hubToken":"«redacted»","trusted":true} and again «redacted»');
  assert.equal(redactSecrets(traced, []), traced);
  assert.equal(redactSecrets('a short one: abc', ['abc']), 'a short one: abc', 'too short to be a token');
});

test('a downloaded model is described with its family, precision, chat, origin and facts', () => {
  assert.equal(describeModel(pulled), '650 MB · qwen2 · q8 · chat');
  const active: ModelSummary = { ...pulled, dtype: 'fp32', chat: false, status: 'active', roles: ['completion'] };
  assert.equal(describeModel(active), '650 MB · qwen2 · active: completion');
  const trained: ModelSummary = { ...pulled, origin: undefined, modelType: 'gpt2', dtype: 'fp32', chat: false };
  assert.equal(describeModel(trained), '650 MB', 'a trained model keeps its short description');
  assert.equal(describeOrigin(pulled.origin!), 'onnx-community/Qwen2.5-Coder-0.5B-Instruct@main (7cb8f6b01234)');
  assert.deepEqual(modelFacts(pulled), [
    ['downloaded from', 'onnx-community/Qwen2.5-Coder-0.5B-Instruct@main (7cb8f6b01234)'],
    ['family', 'qwen2'],
    ['precision', 'q8'],
    ['context', '32,768 tokens'],
    ['fill-in-the-middle', 'yes'],
    ['chat template', 'yes'],
    ['license', 'apache-2.0'],
  ]);
  assert.deepEqual(modelFacts({ ...pulled, origin: undefined, license: undefined, fillInTheMiddle: false }).slice(-2), [
    ['fill-in-the-middle', 'no'],
    ['chat template', 'yes'],
  ]);
  const bare: ModelSummary = { ...trained, modelType: undefined, dtype: undefined, contextLength: undefined };
  assert.deepEqual(modelFacts({ ...bare, fillInTheMiddle: undefined, chat: undefined, license: undefined }), []);
  const tooltip = modelTooltip(pulled);
  assert.match(tooltip, /^\*\*onnx-community--Qwen2\.5-Coder-0\.5B-Instruct-q8\*\* \(causal-lm\)\n/);
  assert.match(tooltip, /\n- downloaded from: `onnx-community\/Qwen2\.5-Coder-0\.5B-Instruct@main \(7cb8f6b01234\)`/);
  assert.match(tooltip, /\n- license: `apache-2\.0`$/);
});
