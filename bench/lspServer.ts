// A language server process for the completion benchmarks, driven over stdio as an editor would: it loads one model
// folder as the bundled default, opens one document, and times textDocument/inlineCompletion requests from the
// server's own log line (wall and CPU time, tokens reused and generated) together with its memory.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-languageserver-protocol/node';
import {
  ConfigurationRequest,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  type InlineCompletionList,
  InlineCompletionRequest,
  LogMessageNotification,
  ShutdownRequest,
} from 'vscode-languageserver-protocol';
import { type ServerStatus, type Settings, Status } from '../server/src/protocol';

export const repository = path.resolve(__dirname, '..');
export const serverScript = path.join(repository, 'server', 'out', 'server.js');

/** How a server is set up: whether it reuses the KV cache, whether it indexes the workspace, other settings. */
export interface Variant {
  label: string;
  reuse: boolean;
  workspaceContext?: boolean;
  /** Completion settings the editor sends (the defaults otherwise). */
  settings?: Partial<Settings['completion']>;
  /** Ask as VS Code does while the user types (trigger kind Automatic) rather than by an explicit invocation. */
  automatic?: boolean;
}

export interface Sample {
  roundTripMs: number;
  serverMs: number;
  /** CPU time of the server process during the request: the latency on an otherwise idle machine, roughly. */
  cpuMs: number;
  source: string;
  generated: number;
  reused: number;
  prompt: number;
  /** Time to run the uncached part of the prompt, and the mean time of one decode step. */
  promptMs: number;
  perTokenMs: number;
  shown: boolean;
  kind: CursorCase['kind'];
}

export interface CursorCase {
  /** The document as the user has it at that moment. */
  text: string;
  line: number;
  character: number;
  kind: 'mid-line' | 'new line';
}

/** One language server process with its own settings, driven over stdio. */
export class BenchServer {
  private readonly logs: string[] = [];
  private status: ServerStatus | undefined;
  private current = '';
  private version = 1;
  readonly samples: Sample[] = [];

  private constructor(
    private readonly child: ReturnType<typeof spawn>,
    private readonly connection: ReturnType<typeof createMessageConnection>,
    private readonly root: string,
    private readonly uri: string,
    private readonly automatic: boolean,
  ) {}

  static async start(modelDir: string, file: string, text: string, variant: Variant): Promise<BenchServer> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-bench-complete-'));
    const bundled = path.join(root, 'bundled');
    fs.mkdirSync(bundled);
    fs.symlinkSync(modelDir, path.join(bundled, 'default'));
    const child = spawn(process.execPath, [serverScript, '--stdio'], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, MODELWRIGHT_KV_REUSE: variant.reuse ? '1' : '0' },
    });
    const connection = createMessageConnection(
      new StreamMessageReader(child.stdout!),
      new StreamMessageWriter(child.stdin!),
    );
    const server = new BenchServer(child, connection, root, `file://${file}`, variant.automatic ?? false);
    connection.onNotification(LogMessageNotification.type, (m) => {
      server.logs.push(m.message);
    });
    connection.onNotification(Status.type, (status) => {
      server.status = status;
    });
    // With a workspace-context variant the repository is the workspace, and the settings say whether to use it.
    const indexing = variant.workspaceContext !== undefined;
    connection.onRequest(ConfigurationRequest.type, (params) =>
      params.items.map(() => ({
        completion: { workspaceContext: variant.workspaceContext ?? true, ...variant.settings },
      })),
    );
    connection.listen();
    await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      workspaceFolders: indexing ? [{ uri: `file://${repository}`, name: 'modelwright' }] : null,
      capabilities: { textDocument: { inlineCompletion: {} }, workspace: { configuration: true } },
      initializationOptions: {
        modelsDirectory: path.join(root, 'models'),
        bundledModelsDirectory: bundled,
        trusted: true,
      },
    });
    await connection.sendNotification(InitializedNotification.type, {});
    const deadline = Date.now() + 60_000;
    while (server.status?.health !== 'ready') {
      if (server.status?.health === 'error' || Date.now() > deadline)
        throw new Error(`the server did not load the model: ${JSON.stringify(server.status)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    server.current = text;
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: server.uri, languageId: 'typescript', version: 1, text },
    });
    while (
      variant.workspaceContext &&
      !server.logs.some((l) => l.startsWith('workspace index: ') && l.includes(' windows'))
    ) {
      if (Date.now() > deadline) throw new Error('the workspace index was not built within a minute');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Warm-up on the first lines (not measured): session start-up, first allocations.
    for (let line = 0; line < 5; line++) await server.request({ line, character: 0 });
    return server;
  }

  private request(position: { line: number; character: number }): Promise<InlineCompletionList> {
    return this.connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri: this.uri },
      position: { line: position.line, character: position.character },
      context: { triggerKind: this.automatic ? 2 : 1 },
    }) as Promise<InlineCompletionList>;
  }

  /** Sends the document as `position` has it, asks for a completion there, and records a sample; returns the answer. */
  async measure(position: CursorCase): Promise<InlineCompletionList> {
    if (position.text !== this.current) {
      this.current = position.text;
      await this.connection.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri: this.uri, version: ++this.version },
        contentChanges: [{ text: this.current }],
      });
    }
    const logCount = this.logs.length;
    const started = performance.now();
    const result = await this.request(position);
    const roundTripMs = performance.now() - started;
    const entry = this.logs.slice(logCount).find((l) => l.startsWith('completion '));
    const parsed = entry
      ? /^completion (\w+): ([\d.]+) ms \(cpu ([\d.]+) ms\), (\d+) tokens generated, (\d+)\/(\d+) prompt tokens reused/.exec(
          entry,
        )
      : null;
    const timings = entry ? /prompt ([\d.]+) ms \+ ([\d.]+) ms\/token/.exec(entry) : null;
    this.samples.push({
      roundTripMs,
      serverMs: parsed ? Number(parsed[2]) : roundTripMs,
      cpuMs: parsed ? Number(parsed[3]) : NaN,
      source: parsed?.[1] ?? 'unknown',
      generated: parsed ? Number(parsed[4]) : 0,
      reused: parsed ? Number(parsed[5]) : 0,
      prompt: parsed ? Number(parsed[6]) : 0,
      promptMs: timings ? Number(timings[1]) : NaN,
      perTokenMs: timings ? Number(timings[2]) : NaN,
      shown: result.items.length > 0,
      kind: position.kind,
    });
    return result;
  }

  memory(): { current: number; peak: number } {
    return memoryOf(this.child.pid!);
  }

  async stop(): Promise<void> {
    await this.connection.sendRequest(ShutdownRequest.type).catch(() => undefined);
    await this.connection.sendNotification(ExitNotification.type).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    this.child.kill();
    this.connection.dispose();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export function memoryOf(pid: number): { current: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { current: field('VmRSS'), peak: field('VmHWM') };
}
