// modelwright/startService and modelwright/stopService: serves models over HTTP (serve/httpServer.ts: OpenAI
// /v1, Open Inference Protocol /v2, /metrics) from the language server process, for the Deploy Model command.
// One service at a time; starting again replaces it; it stops with the server. A deploy or rollback of the
// service role reloads that model in the running service (in-flight requests finish on the old version).
import type { ServerCapabilities } from 'vscode-languageserver';
import { StartService, StopService, isValidModelName } from '../protocol';
import type { ServiceVersion } from '../registry/modelRegistry';
import type { RunningServer } from '../serve/httpServer';
import { answering, invalidParams, requestFailed } from './errors';
import type { Feature } from './feature';
import { requireObject } from './params';
import type { ServerContext } from './serverContext';

export class ServiceFeature implements Feature {
  private running: RunningServer | undefined;

  constructor(private readonly context: ServerContext) {}

  initialize(): ServerCapabilities {
    this.context.registry.onDidChangeService((model) => void this.follow(model));
    this.context.connection.onRequest(StartService.type, (params) => answering(() => this.start(params)));
    this.context.connection.onRequest(StopService.type, () => answering(() => this.stop()));
    return {};
  }

  private async start(raw: StartService.Params): Promise<StartService.Result> {
    const { registry, log, status } = this.context;
    const params = requireObject(raw, StartService.method) as Partial<StartService.Params>;
    if (!registry.trusted) throw requestFailed('untrusted workspace: models cannot be served over HTTP');
    if (!Array.isArray(params.models) || params.models.length === 0 || !params.models.every(isValidModelName)) {
      throw invalidParams(`${StartService.method}: models must be a non-empty list of model names`);
    }
    if (params.port !== undefined && !(Number.isInteger(params.port) && params.port >= 0 && params.port <= 65535)) {
      throw invalidParams(`${StartService.method}: port must be an integer in 0..65535`);
    }
    const entries = params.models.map((name) => registry.resolve(name));
    await this.stop();
    try {
      // Loaded on first use: completions should not pay for the HTTP framework.
      const { startServer } = await import('../serve/httpServer.js');
      const deployed = registry.deployedVersion('service');
      this.running = await startServer({
        models: entries.map((e) => ({
          name: e.name,
          dir: e.dir,
          version: e.name === deployed?.name ? deployed.version : undefined,
        })),
        host: params.host,
        port: params.port,
        apiKey: params.apiKey,
        log: (message) => log.info(`[service] ${message}`),
      });
    } catch (e) {
      throw requestFailed(`could not start the model service: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.servedNames = new Set(entries.map((e) => e.name));
    status.update({ message: `serving ${entries.map((e) => e.name).join(', ')} at ${this.running.url}` });
    return { url: this.running.url, models: entries.map((e) => e.name) };
  }

  /** Serves a new version of the service role when the running service serves that model's name. */
  private async follow(model: ServiceVersion): Promise<void> {
    const running = this.running;
    if (!running || !this.servedNames.has(model.name)) return;
    try {
      const { version } = await running.reload(model.name, model.dir, model.version);
      this.context.log.info(`[service] ${model.name} now serves as version ${version}`);
    } catch (e) {
      this.context.log.warn(`[service] could not reload ${model.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private servedNames = new Set<string>();

  private async stop(): Promise<StopService.Result> {
    const running = this.running;
    this.running = undefined;
    if (running) {
      await running.close();
      this.context.status.update({ message: 'model service stopped' });
    }
    return {};
  }

  async dispose(): Promise<void> {
    await this.stop();
  }
}
