// `modelwright pull`: listed in the help like every command, but its arguments go to the hub's own parser
// (hub/pullCommand.ts), which prints its usage for --help; a safetensors-only pull is converted afterwards.
import type { Command } from 'commander';
import { ensureRunnable } from '../convert/convertFolder';
import { PULL_USAGE, runPull } from '../hub/pullCommand';

export function addPullCommand(program: Command): void {
  program
    .command('pull')
    .summary('download a model from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE)')
    .description(PULL_USAGE)
    .usage('REPO_ID [--revision REV] [--dtype fp32|q8|q4] [--out DIR]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[arguments...]')
    .action(async function (this: Command) {
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      const code = await runPull(this.args, {
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
        signal: controller.signal,
        afterPull: (result) => ensureRunnable(result.dir, (message) => process.stderr.write(`${message}\n`)),
      });
      if (code !== 0) process.exitCode = code;
    });
}
