// The `modelwright` command: train, eval, complete, serve, deploy, pull and convert from a terminal with the same
// modules the language server uses, no VS Code needed; `lsp` runs the language server itself. Parsing and help
// come from commander (one file per command in cli/): help on stdout with exit 0, usage errors exit 2.
import { Command, CommanderError } from 'commander';
import { addCompleteCommand } from './cli/completeCommand';
import { addConvertCommand } from './cli/convertCommand';
import { addDeployCommand } from './cli/deployCommand';
import { addEvalCommand } from './cli/evalCommand';
import { packageVersion, UsageError } from './cli/options';
import { addPullCommand } from './cli/pullCommand';
import { addServeCommand } from './cli/serveCommand';
import { addTrainCommand } from './cli/trainCommand';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

export function buildProgram(): Command {
  const program = new Command('modelwright')
    .description('Train, evaluate, run and serve your own code models on a laptop CPU, offline.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
    })
    .exitOverride();
  addTrainCommand(program);
  addEvalCommand(program);
  addCompleteCommand(program);
  addServeCommand(program);
  addDeployCommand(program);
  addPullCommand(program);
  addConvertCommand(program);
  program
    .command('lsp')
    .summary('run the language server (for editors other than VS Code)')
    .description(
      'Runs the language server over the transport given: --stdio, --node-ipc, --socket=PORT or --pipe=NAME.',
    )
    .option('--stdio', 'over standard input and output')
    .option('--node-ipc', 'over a Node IPC channel')
    .option('--socket <port>', 'over a TCP socket')
    .option('--pipe <name>', 'over a named pipe')
    .allowUnknownOption()
    .action(async (flags: { stdio?: boolean; nodeIpc?: boolean; socket?: string; pipe?: string }) => {
      if (!flags.stdio && !flags.nodeIpc && !flags.socket && !flags.pipe)
        throw new UsageError('lsp needs a transport: --stdio, --node-ipc, --socket=PORT or --pipe=NAME');
      await import('./server.js'); // starts listening on the transport named in process.argv
      await new Promise<never>(() => {}); // the server ends the process when the client says so
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version exit 0; commander has already printed the message of a usage error.
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const command = argv[0];
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`modelwright ${command}: ${message}\n`);
    if (e instanceof UsageError) {
      process.stderr.write(`(run modelwright ${command} --help for usage)\n`);
      return EXIT_USAGE;
    }
    return EXIT_FAILED;
  }
}

if (require.main === module) main(process.argv.slice(2)).then((code) => process.exit(code));
