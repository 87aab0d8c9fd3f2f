// Integration tests of explanations through the spawned server: modelwright/explain streaming partial results
// and work-done progress, the grounding in workspace files, per-line surprisal, the hover (explanation when the
// setting is on, an unusual-line note otherwise), the "Explain with Modelwright" code action, and errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes } from 'vscode-languageserver-protocol';
import { CodeActionRequest, HoverRequest, type MarkupContent } from 'vscode-languageserver-protocol';
import { Explain, ExplainCommand } from '../../server/src/protocol';
import { ServerHarness, modelDirectories, waitFor } from './serverHarness';
import { makeTrainedModel, writeSourcesWorkspace } from './testModels';

describe('explanations', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;
  let workspace: string;
  let fileUri: string;
  let lines: string[];
  let hover = false;

  before(async () => {
    dirs = modelDirectories();
    await makeTrainedModel(path.join(dirs.bundled, 'default'));
    workspace = writeSourcesWorkspace(path.join(dirs.root, 'workspace'));
    fileUri = `file://${path.join(workspace, 'stopRules.ts')}`;
    lines = fs.readFileSync(path.join(workspace, 'stopRules.ts'), 'utf8').split('\n');
    server = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      workspaceFolder: workspace,
      settings: () => ({ explanation: { hover, maxTokens: 24 } }),
    });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    dirs?.remove();
  });

  test('explain streams chunks that add up to the result, with grounding and per-line surprisal', async () => {
    const line = lines.findIndex((l) => l.includes('findStop(text, rules') || l.includes('const lines = text.split'));
    assert.ok(line > 0);
    const chunks: string[] = [];
    const partialResultToken = 'explain-partial-1';
    const workDoneToken = 'explain-progress-1';
    server.connection.onProgress(Explain.chunkType, partialResultToken, (chunk) => {
      chunks.push(chunk.text);
    });
    server.watchProgress(workDoneToken);
    // A file that is not open is read from disk.
    const result = await server.connection.sendRequest(Explain.type, {
      textDocument: { uri: fileUri },
      range: { start: { line: line - 2, character: 0 }, end: { line: line + 1, character: 0 } },
      partialResultToken,
      workDoneToken,
    });
    // The server sends the chunks, then ends the work-done progress, then answers: wait for the end of the progress.
    const progress = await waitFor(() => {
      const values = server.progress.get(workDoneToken) as { kind: string }[] | undefined;
      return values?.at(-1)?.kind === 'end' && values;
    }, 'the end of the work-done progress');
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.equal(chunks.join(''), result.text);
    assert.equal(result.model, 'default');
    assert.match(result.text, /stopRules\.ts, lines \d+–\d+/);
    assert.match(result.text, /defined in \w+\.ts:\d+/, 'names are grounded in workspace files');
    assert.match(result.text, /How usual these lines are for this codebase/);
    assert.ok(result.lines.length >= 2);
    for (const l of result.lines) assert.ok(l.bitsPerToken > 0 && l.line >= line - 2 && l.line <= line);
    assert.deepEqual([progress[0]?.kind, progress.at(-1)?.kind], ['begin', 'end']);
  });

  test('the code action offers "Explain with Modelwright" with the document and range', async () => {
    server.open(fileUri, lines.join('\n'));
    const actions = (await server.connection.sendRequest(CodeActionRequest.type, {
      textDocument: { uri: fileUri },
      range: { start: { line: 3, character: 0 }, end: { line: 5, character: 0 } },
      context: { diagnostics: [] },
    })) as { title: string; command?: { command: string; arguments?: unknown[] } }[];
    assert.equal(actions.length, 1);
    assert.equal(actions[0].title, 'Explain with Modelwright');
    assert.equal(actions[0].command?.command, ExplainCommand.command);
    assert.deepEqual(actions[0].command?.arguments, [
      fileUri,
      { start: { line: 3, character: 0 }, end: { line: 5, character: 0 } },
    ]);
    const filtered = await server.connection.sendRequest(CodeActionRequest.type, {
      textDocument: { uri: fileUri },
      range: { start: { line: 3, character: 0 }, end: { line: 3, character: 0 } },
      context: { diagnostics: [], only: ['quickfix'] },
    });
    assert.deepEqual(filtered, []);
  });

  test('hover: an unusual-line note when explanations are off, the explanation when on', async () => {
    const odd = lines.length - 3;
    const text = [...lines.slice(0, odd), '  ZQXJ_vvv ^= 0x7f3a9bQQ ?? ~~Kk_ww9 @@ Ppp0;', ...lines.slice(odd)].join(
      '\n',
    );
    server.open(fileUri, lines.join('\n'));
    server.change(fileUri, text);
    const ordinary = lines.findIndex((l) => l.startsWith('export interface'));
    assert.equal(
      await server.connection.sendRequest(HoverRequest.type, {
        textDocument: { uri: fileUri },
        position: { line: ordinary, character: 3 },
      }),
      null,
    );
    const note = await server.connection.sendRequest(HoverRequest.type, {
      textDocument: { uri: fileUri },
      position: { line: odd, character: 4 },
    });
    assert.match(
      (note?.contents as MarkupContent).value,
      /unusual line for this codebase — [\d.]+ bits\/token under default/,
    );

    hover = true;
    await server.configure(server.settings);
    const explained = await server.connection.sendRequest(HoverRequest.type, {
      textDocument: { uri: fileUri },
      position: { line: ordinary, character: 20 },
    });
    const value = (explained?.contents as MarkupContent).value;
    assert.equal((explained?.contents as MarkupContent).kind, 'markdown');
    assert.match(value, /stopRules\.ts, line \d+/);
    assert.match(value, /Comment continued by the code model/);
    hover = false;
    await server.configure(server.settings);
  });

  test('an unknown explanation model in the settings is a clear error', async () => {
    const previous = server.settings;
    await server.configure(() => ({ models: { explanation: 'no-such-model' } }));
    try {
      await assert.rejects(
        server.connection.sendRequest(Explain.type, {
          textDocument: { uri: fileUri },
          range: { start: { line: 0, character: 0 }, end: { line: 1, character: 0 } },
        }),
        (e: unknown) =>
          (e as { code: number }).code === ErrorCodes.InvalidParams &&
          /unknown model "no-such-model"/.test((e as Error).message),
      );
      await assert.rejects(
        server.connection.sendRequest(Explain.type, {
          textDocument: { uri: 'file:///nowhere/missing.ts' },
          range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
        }),
        /neither open nor a readable file/,
      );
    } finally {
      await server.configure(previous);
    }
  });
});
