// Integration tests of the server process itself: starting without any model (a clear status, empty answers),
// announcing only the capabilities the client supports, stdio through `modelwright lsp --stdio` and node IPC as
// the VS Code extension uses it, and surviving malformed and out-of-range messages.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawn } from 'node:child_process';
import * as path from 'node:path';
import {
  ErrorCodes,
  IPCMessageReader,
  IPCMessageWriter,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
} from 'vscode-languageserver-protocol/node';
import {
  HoverRequest,
  InitializeRequest,
  type InitializeResult,
  InlineCompletionRequest,
} from 'vscode-languageserver-protocol';
import { ListModels } from '../../server/src/protocol';
import { ServerHarness, fullCapabilities, modelDirectories, repository, serverScript } from './serverHarness';
import { makeParrotModel } from './testModels';

describe('server lifecycle', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  const harnesses: ServerHarness[] = [];
  const extraDirs: ReturnType<typeof modelDirectories>[] = [];
  const start = async (options: Partial<Parameters<typeof ServerHarness.start>[0]> = {}) => {
    const harness = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      ...options,
    });
    harnesses.push(harness);
    return harness;
  };

  before(() => {
    dirs = modelDirectories();
  });
  after(async () => {
    await Promise.all(harnesses.map((h) => h.stop()));
    dirs.remove();
    for (const extra of extraDirs) extra.remove();
  });

  test('starts without any model, says why in the status, and answers with nothing', async () => {
    const server = await start();
    const status = await server.waitForStatus((s) => s.health !== 'starting');
    assert.equal(status.health, 'error');
    assert.match(
      status.message ?? '',
      /No completion model: the bundled "default" model is missing .* Train a model and deploy it/,
    );
    server.open('file:///tmp/empty.ts', 'const a = ');
    assert.deepEqual(await server.complete('file:///tmp/empty.ts', 0, 10), { items: [] });
    assert.deepEqual(await server.connection.sendRequest(ListModels.type, {}), { models: [], active: {} });
  });

  test('announces only the features the client supports', async () => {
    const full = createMessageConnectionTo(spawn(process.execPath, [serverScript, '--stdio']));
    const bare = createMessageConnectionTo(spawn(process.execPath, [serverScript, '--stdio']));
    const initialize = (connection: typeof full.connection, capabilities: object) =>
      connection.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        rootUri: null,
        capabilities: capabilities as never,
        initializationOptions: { modelsDirectory: dirs.models, bundledModelsDirectory: dirs.bundled, trusted: true },
      }) as Promise<InitializeResult>;
    try {
      const rich = (await initialize(full.connection, fullCapabilities)).capabilities;
      assert.ok(rich.inlineCompletionProvider);
      assert.equal(rich.hoverProvider, true);
      assert.ok(rich.codeActionProvider);
      const poor = (await initialize(bare.connection, {})).capabilities;
      assert.equal(poor.inlineCompletionProvider, undefined);
      assert.equal(poor.hoverProvider, undefined);
      assert.equal(poor.codeActionProvider, undefined);
      assert.ok(poor.textDocumentSync);
    } finally {
      full.dispose();
      bare.dispose();
    }
  });

  test('`modelwright lsp --stdio` and node IPC both serve', async () => {
    const cli = createMessageConnectionTo(
      spawn(process.execPath, [path.join(repository, 'bin', 'modelwright.js'), 'lsp', '--stdio']),
    );
    const ipcChild = fork(serverScript, ['--node-ipc'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    const ipc = createMessageConnection(new IPCMessageReader(ipcChild), new IPCMessageWriter(ipcChild));
    ipc.listen();
    try {
      for (const connection of [cli.connection, ipc]) {
        const result = (await connection.sendRequest(InitializeRequest.type, {
          processId: process.pid,
          rootUri: null,
          capabilities: fullCapabilities as never,
          initializationOptions: { modelsDirectory: dirs.models, bundledModelsDirectory: dirs.bundled, trusted: true },
        })) as InitializeResult;
        assert.equal(result.serverInfo?.name, 'modelwright');
      }
    } finally {
      cli.dispose();
      ipc.dispose();
      ipcChild.kill();
    }
  });

  test('survives malformed and out-of-range messages', async () => {
    // Its own folders: the other tests need a bundled folder without a model.
    const own = modelDirectories();
    extraDirs.push(own);
    await makeParrotModel(path.join(own.bundled, 'default'));
    const server = await start({ modelsDirectory: own.models, bundledModelsDirectory: own.bundled });
    await server.waitForStatus((s) => s.health === 'ready');
    const uri = 'file:///tmp/survive.ts';
    server.open(uri, 'line one\nline two\n');
    const errorCode = async (promise: Promise<unknown>) => {
      try {
        await promise;
        return undefined;
      } catch (e) {
        return (e as { code?: number }).code;
      }
    };
    const send = (method: string, params: unknown) => server.connection.sendRequest(method, params);

    // Broken JSON and a header without a body on the wire.
    server.child.stdin!.write('Content-Length: 9\r\n\r\n{"broken"');
    server.child.stdin!.write('Content-Length: 2\r\n\r\n[]');
    // The server reads its input in order: the requests below come after both and show it is still answering.
    assert.equal(
      await errorCode(
        send(InlineCompletionRequest.method, {
          textDocument: { uri },
          position: { line: 99999, character: 0 },
          context: { triggerKind: 1 },
        }),
      ),
      ErrorCodes.InvalidParams,
    );
    assert.equal(
      await errorCode(
        send(InlineCompletionRequest.method, {
          textDocument: { uri },
          position: { line: 'one', character: -1 },
          context: { triggerKind: 1 },
        }),
      ),
      ErrorCodes.InvalidParams,
    );
    assert.equal(
      await errorCode(
        send(InlineCompletionRequest.method, {
          textDocument: { uri },
          position: { line: 0, character: 0 },
          context: { triggerKind: 7 },
        }),
      ),
      ErrorCodes.InvalidParams,
    );
    assert.equal(await errorCode(send(InlineCompletionRequest.method, null)), ErrorCodes.InvalidParams);
    assert.equal(
      await errorCode(
        send(InlineCompletionRequest.method, {
          textDocument: { uri: 'file:///never/opened.ts' },
          position: { line: 0, character: 0 },
          context: { triggerKind: 1 },
        }),
      ),
      ErrorCodes.InvalidParams,
    );
    assert.equal(
      await errorCode(send(HoverRequest.method, { textDocument: {}, position: {} })),
      ErrorCodes.InvalidParams,
    );
    assert.equal(
      await errorCode(send('modelwright/deploy', { name: 42, role: 'completion' })),
      ErrorCodes.InvalidParams,
    );
    assert.equal(
      await errorCode(
        send('modelwright/explain', {
          textDocument: { uri },
          range: { start: { line: 1, character: 0 }, end: { line: 0, character: 0 } },
        }),
      ),
      ErrorCodes.InvalidParams,
    );
    assert.equal(await errorCode(send('modelwright/noSuchMethod', {})), ErrorCodes.MethodNotFound);
    // A character past the end of the line means the end of the line.
    const clamped = await server.complete(uri, 0, 500);
    assert.equal(clamped.items[0]?.range?.start.character, 'line one'.length);
    assert.ok(server.alive);
    assert.equal((await server.complete(uri, 2, 0)).items.length, 1, 'still completing');
  });
});

function createMessageConnectionTo(child: ReturnType<typeof spawn>) {
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout!),
    new StreamMessageWriter(child.stdin!),
  );
  connection.onError(() => undefined);
  connection.listen();
  return {
    connection,
    dispose: () => {
      connection.dispose();
      child.kill();
    },
  };
}
