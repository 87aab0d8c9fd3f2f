// Checks the classifier encoder against a PyTorch reference (encoderReference.py, Hugging Face
// BertForSequenceClassification's math in its parameter names) on a padded batch: the exported inference graph's
// logits, and the training graph's loss and every weight's gradient, unweighted and with class weights.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  type EncoderConfig,
  encoderConfigJson,
  encoderParameterShapes,
  initialEncoderParameters,
} from '../../server/src/engine/encoder';
import {
  buildEncoderGradients,
  buildEncoderInference,
  encoderNames,
  packEncoder,
} from '../../server/src/engine/encoderTrainingGraph';
import { encodeModel } from '../../server/src/engine/onnx';
import { createSession, floatTensor, int64Tensor } from '../../server/src/runtime/onnxSession';

const python = '/usr/bin/python3';
const hasTorch = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

const config: EncoderConfig = {
  vocabSize: 40,
  hiddenSize: 16,
  layers: 2,
  heads: 2,
  intermediateSize: 32,
  maxPositions: 12,
  labels: 3,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
};
const batch = 3;
const time = 6;
const inputIds = [
  [1, 7, 9, 22, 3, 5],
  [1, 30, 2, 4, 0, 0],
  [1, 11, 0, 0, 0, 0],
];
const attentionMask = [
  [1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 0, 0],
  [1, 1, 0, 0, 0, 0],
];
const labels = [2, 0, 1];

for (const classWeights of [undefined, Float32Array.of(0.5, 2, 1.25)])
  test(`encoder logits, loss and gradients match PyTorch${classWeights ? ' with class weights' : ''}`, {
    skip: !hasTorch && 'no torch in /usr/bin/python3',
  }, async () => {
    // Larger than BERT's 0.02 so that every layer matters to the logits.
    const weights = initialEncoderParameters(config, 3);
    for (const [name, data] of weights) {
      if (name.includes('LayerNorm')) for (let i = 0; i < data.length; i++) data[i] += 0.1 * Math.sin(i + 1);
      else
        for (let i = 0; i < data.length; i++)
          data[i] = data[i] * 15 + (name.endsWith('.bias') ? 0.05 * Math.cos(i) : 0);
    }
    const spec = {
      config: encoderConfigJson(config, ['a', 'b', 'c'], 0),
      params: encoderParameterShapes(config).map(([name, shape]) => ({
        name,
        shape,
        data: Array.from(weights.get(name)!),
      })),
      input_ids: inputIds,
      attention_mask: attentionMask,
      labels,
      class_weights: classWeights && Array.from(classWeights),
    };
    const reference = spawnSync(python, [path.join(__dirname, 'encoderReference.py')], {
      input: JSON.stringify(spec),
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(reference.status, 0, reference.stderr);
    const expected = JSON.parse(reference.stdout) as {
      logits: number[];
      loss: number;
      grads: Record<string, number[]>;
    };

    const ids = BigInt64Array.from(inputIds.flat().map(BigInt));
    const mask = BigInt64Array.from(attentionMask.flat().map(BigInt));
    const dims = [batch, time];

    const inference = await createSession(encodeModel(buildEncoderInference(config, weights)));
    const out = await inference.run({
      [encoderNames.inputIds]: int64Tensor(ids, dims),
      [encoderNames.attentionMask]: int64Tensor(mask, dims),
      [encoderNames.tokenTypeIds]: int64Tensor(new BigInt64Array(ids.length), dims),
    });
    const logits = Array.from(out[encoderNames.logits].data as Float32Array);
    const logitError = Math.max(...logits.map((v, i) => Math.abs(v - expected.logits[i])));
    assert.ok(logitError < 1e-4, `logits differ by ${logitError}`);
    assert.ok(Math.max(...expected.logits.map(Math.abs)) > 0.1, 'the reference logits are not trivially small');
    await inference.release();

    const flat = packEncoder(config, weights);
    const gradients = await createSession(encodeModel(buildEncoderGradients(config, batch, time, classWeights)));
    const result = await gradients.run({
      [encoderNames.inputIds]: int64Tensor(ids, dims),
      [encoderNames.attentionMask]: int64Tensor(mask, dims),
      [encoderNames.labels]: int64Tensor(BigInt64Array.from(labels.map(BigInt)), [batch]),
      [encoderNames.parameters]: floatTensor(flat, [flat.length]),
    });
    const loss = (result[encoderNames.loss].data as Float32Array)[0];
    assert.ok(Math.abs(loss - expected.loss) < 1e-4, `loss ${loss} vs ${expected.loss}`);
    for (const [name] of encoderParameterShapes(config)) {
      const ours = result[`grad/${name}`].data as Float32Array;
      const theirs = expected.grads[name];
      const scale = Math.max(1e-3, ...theirs.map(Math.abs));
      const error = Math.max(...Array.from(ours, (v, i) => Math.abs(v - theirs[i])));
      assert.ok(error / scale < 1e-3, `${name}: gradients differ by ${error} (largest ${scale})`);
    }
    await gradients.release();
  });
