// `modelwright deploy`: the evaluation-gated deploy of a model for a role and its rollback (cli/gatedDeploy.ts),
// and `--export triton DIR`, which writes a Triton model repository of the folder (deploy/tritonExport.ts).
import * as path from 'node:path';
import type { Command } from 'commander';
import { exportTriton } from '../deploy/tritonExport';
import { readModelCard, updateModelCard } from '../modelFolder/modelCard';
import { deploymentRoles } from '../protocol';
import { gatedDeployCommand } from './gatedDeploy';
import { UsageError, nonNegativeNumber, positiveInteger } from './options';

interface DeployFlags {
  export?: string;
  name?: string;
  role?: string;
  models?: string;
  evalWorkspace?: string;
  evalData?: string;
  text?: string;
  label?: string;
  threshold?: number;
  force?: boolean;
  rollback?: boolean;
  version?: number;
  samples?: number;
  threads?: number;
}

export function addDeployCommand(program: Command): void {
  program
    .command('deploy')
    .summary('deploy a model for a role (evaluation-gated), roll back, or export for Triton')
    .description(
      'Deploys MODEL for a role only when it is not worse than the model serving that role on the same held-out ' +
        'data (next-line exact match and edit similarity for completion, held-out loss for explanation, macro-F1 ' +
        'for a classifier), by more than --threshold; otherwise prints the side-by-side table and refuses ' +
        '(--force deploys anyway and records it). Every deploy is a version in <models>/.deployments; --rollback ' +
        'serves the previous version again. With --export triton DIR, writes a Triton model repository instead.',
    )
    .argument('[model]', 'a model folder of the models folder, or its name')
    .option('--role <role>', `completion, explanation or service (default completion)`)
    .option('--models <dir>', 'the models folder (default: the folder MODEL is in, else ./models)')
    .option('--eval-workspace <dir>', 'compare on this workspace instead of the held-out files of the candidate')
    .option('--eval-data <file>', 'classifiers: compare on the rows of this CSV/JSONL file')
    .option('--text <column>', 'with --eval-data: the text column', 'text')
    .option('--label <column>', 'with --eval-data: the label column', 'label')
    .option('--threshold <x>', 'tolerated loss of quality (default 0)', nonNegativeNumber)
    .option('--force', 'deploy even when the gate refuses (recorded with the version)')
    .option('--rollback', 'serve the previous version of the role again')
    .option('--version <n>', 'with --rollback: the version to return to', positiveInteger)
    .option('--samples <n>', 'completion: cursor positions evaluated per model', positiveInteger)
    .option('--threads <n>', 'onnxruntime threads', positiveInteger)
    .option('--export <target>', 'write a deployment for another server instead: triton')
    .option('--name <name>', 'with --export: the model name in the repository')
    .action(async (model: string | undefined, flags: DeployFlags, command: Command) => {
      if (flags.export !== undefined) {
        const target = command.args[1];
        if (flags.export !== 'triton' || !model || !target)
          throw new UsageError('deploy needs MODELDIR --export triton DIR');
        const result = exportTriton(model, target, { name: flags.name });
        if (readModelCard(model)) {
          updateModelCard(model, (card) => {
            card.deployedAt = { ...card.deployedAt, [`triton:${path.resolve(target)}`]: new Date().toISOString() };
          });
        }
        process.stdout.write(
          `wrote Triton model ${result.name}: ${result.configFile} ` +
            `(${result.signature.inputs.length} inputs, ${result.signature.outputs.length} outputs) ` +
            `and ${result.modelFile}\n`,
        );
        return;
      }
      if (flags.role !== undefined && !(deploymentRoles as readonly string[]).includes(flags.role))
        throw new UsageError(`--role must be one of ${deploymentRoles.join(', ')}`);
      const code = await gatedDeployCommand({ model, ...flags }, { stdout: process.stdout, stderr: process.stderr });
      if (code !== 0) process.exitCode = code;
    })
    .allowExcessArguments(true);
}
