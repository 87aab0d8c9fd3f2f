// `modelwright serve`: the HTTP service (OpenAI-compatible and Open Inference Protocol v2 routes, metrics) for
// one or more model folders, or for a deployment role that it follows as deploys and rollbacks change it, with
// graceful shutdown on SIGTERM/SIGINT.
import * as path from 'node:path';
import type { Command } from 'commander';
import { type DeploymentRole, deploymentRoles } from '../protocol';
import { collect, nonNegativeInteger, positiveInteger, positiveNumber, UsageError } from './options';

interface ServeFlags {
  model?: string[];
  role?: string;
  models?: string;
  host?: string;
  port: number;
  apiKeyFile?: string;
  maxBatchSize?: number;
  maxBatchTokens?: number;
  promptCache?: number;
  batching: boolean;
  queue?: number;
  timeout?: number;
  threads?: number;
}

export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .summary('serve model folders over HTTP (OpenAI and Open Inference Protocol v2)')
    .description(
      'Serves model folders over HTTP: /v1/models and /v1/completions (OpenAI-compatible, streaming), the Open ' +
        'Inference Protocol v2 (/v2/...), and Prometheus /metrics. Listens on 127.0.0.1 unless --api-key-file ' +
        "is given. With --role, serves what is deployed in that role (under the role's name, OIP versions = " +
        'deployment versions) and switches when a deploy or rollback changes it. SIGTERM or Ctrl-C lets requests ' +
        'in flight finish; a second one quits at once.',
    )
    .option('--model <[name=]modeldir>', 'a model folder to serve, optionally named (repeatable)', collect)
    .option('--role <role>', `serve and follow a deployment role: ${deploymentRoles.join(', ')}`)
    .option('--models <dir>', 'with --role: the models folder holding the deployments', 'models')
    .option('--host <host>', 'address to listen on (default: 127.0.0.1; another needs --api-key-file)')
    .option('--port <n>', 'port to listen on', nonNegativeInteger, 8000)
    .option('--api-key-file <file>', 'file holding the API key clients must send as a bearer token')
    .option('--max-batch-size <n>', 'most requests decoded together', positiveInteger)
    .option(
      '--max-batch-tokens <n>',
      'most cached positions (rows × longest row) of one batch (default 16384)',
      positiveInteger,
    )
    .option(
      '--prompt-cache <positions>',
      'most positions of recent prompts kept per model for prompts that start the same way (default: as many as fit in 128 MB, at least 4096; 0: off)',
      nonNegativeInteger,
    )
    .option('--no-batching', 'decode one request at a time')
    .option('--queue <n>', 'most requests waiting before new ones get 503', nonNegativeInteger)
    .option('--timeout <seconds>', 'time limit of one request', positiveNumber)
    .option('--threads <n>', 'onnxruntime threads per model', positiveInteger)
    .action(async (flags: ServeFlags) => runServe(flags));
}

async function runServe(flags: ServeFlags): Promise<void> {
  if (!flags.model?.length && !flags.role) throw new UsageError('serve needs --model MODELDIR or --role ROLE');
  if (flags.role !== undefined && !(deploymentRoles as readonly string[]).includes(flags.role))
    throw new UsageError(`--role must be one of ${deploymentRoles.join(', ')}`);
  const role = flags.role as DeploymentRole | undefined;
  const models: { name?: string; dir: string; version?: number }[] = (flags.model ?? []).map((spec) => {
    const at = spec.indexOf('=');
    return at > 0 ? { name: spec.slice(0, at), dir: spec.slice(at + 1) } : { dir: spec };
  });
  const log = (message: string) => process.stderr.write(`${new Date().toISOString()} ${message}\n`);
  // Loaded here so that other commands (the language server among them) do not pay for the HTTP framework.
  const { readApiKeyFile } = await import('../serve/auth.js');
  const { startServer } = await import('../serve/httpServer.js');
  const { deployedModel, followDeployments } = await import('../serve/deploymentFollower.js');
  const modelsDirectory = path.resolve(flags.models ?? 'models');
  const deployed = role && deployedModel(modelsDirectory, role);
  if (role && deployed) models.push({ name: role, dir: deployed.dir, version: deployed.version });
  const server = await startServer({
    models,
    host: flags.host,
    port: flags.port,
    apiKey: flags.apiKeyFile ? readApiKeyFile(flags.apiKeyFile, log) : undefined,
    batching: flags.batching,
    maxBatchSize: flags.maxBatchSize,
    maxBatchTokens: flags.maxBatchTokens,
    promptCachePositions: flags.promptCache,
    maxQueue: flags.queue,
    requestTimeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
    intraOpThreads: flags.threads,
    log,
  });
  const following =
    role && deployed
      ? followDeployments(server, { modelsDirectory, role, name: role, version: deployed.version, log })
      : undefined;
  if (role && deployed) log(`serving ${role} version ${deployed.version} ("${deployed.model}") as model ${role}`);
  process.stdout.write(`listening on ${server.url}\n`);
  // SIGTERM/SIGINT: stop accepting, let requests in flight finish, exit; a second signal exits at once.
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log(`${signal}: finishing requests in flight (again to quit at once)`);
      following?.dispose();
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      server.close().then(resolve, (e: unknown) => {
        log(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
