// `modelwright convert MODELDIR [--dtype fp32|q8]`: builds the ONNX graph of a hub checkpoint that has only
// safetensors weights (gpt2, llama, qwen2, mistral), or its int8 version.
import * as path from 'node:path';
import { type Command, Option } from 'commander';
import { CONVERSION_DTYPES, type ConversionDtype, convertFolder } from '../convert/convertFolder';
import { formatDuration } from '../protocol';

export function addConvertCommand(program: Command): void {
  program
    .command('convert')
    .summary("build onnx/model.onnx from a checkpoint's safetensors")
    .description(
      "Builds onnx/model.onnx (or with --dtype q8 the int8 onnx/model_quantized.onnx) from a hub checkpoint's " +
        'safetensors weights: model_type gpt2, llama, qwen2 or mistral.',
    )
    .argument('<modeldir>', 'the model folder')
    .addOption(new Option('--dtype <dtype>', 'precision of the graph').choices(CONVERSION_DTYPES).default('fp32'))
    .action((modelDir: string, flags: { dtype: ConversionDtype }) => {
      const started = performance.now();
      const result = convertFolder(modelDir, { dtype: flags.dtype });
      const seconds = (performance.now() - started) / 1000;
      const external = result.externalDataFile ? ` (weights in ${path.join(modelDir, result.externalDataFile)})` : '';
      process.stdout.write(
        `${path.join(modelDir, result.onnxFile)}: ${result.family}, ${result.dtype}, ${result.parameters} ` +
          `parameters, ${(result.bytes / 1e6).toFixed(1)} MB${external}, ${formatDuration(seconds)}\n`,
      );
    });
}
