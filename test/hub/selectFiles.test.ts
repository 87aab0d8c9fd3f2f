// Tests for selectFiles: the config and tokenizer files a model needs, the transformers.js ONNX names of each
// dtype with their external data files, and the safetensors fallback (one file or the shards of an index).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  externalDataFiles,
  type FileSelection,
  isSelectionFailure,
  selectFiles,
  shardsOfIndex,
} from '../../server/src/hub/selectFiles';

const METADATA = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
];

function selected(paths: string[], dtype: 'fp32' | 'q8' | 'q4', shards?: string[]): FileSelection {
  const selection = selectFiles(paths, dtype, shards);
  assert.ok(!isSelectionFailure(selection), JSON.stringify(selection));
  return selection;
}

describe('selectFiles', () => {
  test('takes the metadata, tokenizer and docs files that exist, and nothing else of the repo', () => {
    const paths = [...METADATA, 'README.md', 'LICENSE.txt', '.gitattributes', 'pytorch_model.bin', 'onnx/model.onnx'];
    const selection = selected(paths, 'fp32');
    assert.deepEqual(selection.files, [...METADATA, 'LICENSE.txt', 'README.md', 'onnx/model.onnx']);
    assert.equal(selection.weights, 'onnx');
    const sentencepiece = selected(['config.json', 'tokenizer.model', 'onnx/model.onnx'], 'fp32');
    assert.deepEqual(sentencepiece.files, ['config.json', 'tokenizer.model', 'onnx/model.onnx']);
  });

  test('the ONNX file of each dtype in transformers.js naming', () => {
    const onnx = ['onnx/model.onnx', 'onnx/model_quantized.onnx', 'onnx/model_int8.onnx', 'onnx/model_q4.onnx'];
    const paths = ['config.json', ...onnx, 'onnx/model_fp16.onnx', 'model.safetensors'];
    assert.equal(selected(paths, 'fp32').onnxFile, 'onnx/model.onnx');
    assert.equal(selected(paths, 'q8').onnxFile, 'onnx/model_quantized.onnx');
    assert.equal(
      selected(
        paths.filter((p) => !p.includes('quantized')),
        'q8',
      ).onnxFile,
      'onnx/model_int8.onnx',
    );
    assert.equal(selected(paths, 'q4').onnxFile, 'onnx/model_q4.onnx');
    for (const dtype of ['fp32', 'q8', 'q4'] as const)
      assert.ok(!selected(paths, dtype).files.includes('model.safetensors'), `${dtype} needs no safetensors`);
  });

  test('external data files come with their ONNX file, in numeric order', () => {
    const paths = [
      'onnx/model.onnx',
      'onnx/model.onnx_data_10',
      'onnx/model.onnx_data_2',
      'onnx/model.onnx_data',
      'onnx/model.onnx_data_1',
      'onnx/model_q4.onnx_data',
      'onnx/model.onnx_database',
    ];
    assert.deepEqual(externalDataFiles('onnx/model.onnx', paths), [
      'onnx/model.onnx_data',
      'onnx/model.onnx_data_1',
      'onnx/model.onnx_data_2',
      'onnx/model.onnx_data_10',
    ]);
    const selection = selected(['config.json', ...paths, 'onnx/model_q4.onnx'], 'q4');
    assert.deepEqual(selection.files.slice(-2), ['onnx/model_q4.onnx', 'onnx/model_q4.onnx_data']);
  });

  test('without ONNX for the dtype: model.safetensors, or the index and then its shards', () => {
    const single = selected(['config.json', 'onnx/model.onnx', 'model.safetensors'], 'q8');
    assert.equal(single.weights, 'safetensors');
    assert.deepEqual(single.files, ['config.json', 'model.safetensors']);

    const sharded = ['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors'];
    const first = selected(sharded, 'fp32');
    assert.equal(first.needsShardIndex, 'model.safetensors.index.json');
    assert.deepEqual(first.files, ['config.json', 'model.safetensors.index.json']);
    const shards = shardsOfIndex(
      JSON.stringify({
        weight_map: {
          a: 'model-00002-of-00002.safetensors',
          b: 'model-00001-of-00002.safetensors',
          c: 'model-00001-of-00002.safetensors',
        },
      }),
    );
    assert.deepEqual(shards, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    const second = selected(sharded, 'fp32', shards);
    assert.equal(second.needsShardIndex, undefined);
    assert.deepEqual(second.files, ['config.json', 'model.safetensors.index.json', ...shards]);
    assert.throws(() => shardsOfIndex('{"metadata":{}}'), /weight_map/);
  });

  test('says what is missing: the config, any weights, or a q4 export (q4 cannot be made by conversion)', () => {
    assert.deepEqual(selectFiles(['config.json', 'onnx/model.onnx', 'model.safetensors'], 'q4'), {
      missing: 'export',
      dtype: 'q4',
    });
    assert.deepEqual(selectFiles(['tokenizer.json', 'onnx/model.onnx'], 'fp32'), { missing: 'config' });
    assert.deepEqual(selectFiles(['config.json', 'onnx/model_fp16.onnx', 'pytorch_model.bin'], 'q8'), {
      missing: 'weights',
      onnxFiles: ['onnx/model_fp16.onnx'],
    });
  });
});
