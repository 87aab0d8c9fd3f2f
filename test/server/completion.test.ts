// Integration tests of textDocument/inlineCompletion through the spawned server: suggestions, settings fetched
// per document (enable, languages, model, limits), debounce of automatic triggers, the typed-ahead cache,
// cancellation that stops decoding mid-way, the confidence threshold, and the latency in the status.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { CancellationTokenSource } from 'vscode-languageserver-protocol/node';
import { LSPErrorCodes } from 'vscode-languageserver-protocol';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { ServerHarness, modelDirectories } from './serverHarness';
import { makeParrotModel } from './testModels';

describe('inline completion', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;
  const base = { completion: { confidenceThreshold: 0 } };

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'), {
      character: 'x',
      config: { contextLength: 1024, layers: 4, heads: 4, embedding: 128 },
    });
    await makeParrotModel(path.join(dirs.models, 'yankee'), { character: 'y' });
    const random = await makeModelFolder({ parentDir: dirs.models });
    const fs = await import('node:fs');
    fs.renameSync(random.dir, path.join(dirs.models, 'random'));
    server = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
    });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    dirs?.remove();
  });

  test("an explicit invocation answers with the model's suggestion at the cursor", async () => {
    await server.configure(() => ({ ...base, completion: { ...base.completion, maxTokens: 12 } }));
    server.open('file:///work/a.ts', 'function area(width: number) {\n  return \n}\n');
    const result = await server.complete('file:///work/a.ts', 1, 9);
    assert.deepEqual(
      result.items.map(({ command: _, ...item }) => item),
      [{ insertText: 'x'.repeat(12), range: { start: { line: 1, character: 9 }, end: { line: 1, character: 9 } } }],
    );
    assert.equal(result.items[0].command?.command, 'modelwright.completionAccepted');
    assert.ok(server.configurationRequests.includes('file:///work/a.ts'), 'settings are fetched for the document');
    const status = await server.waitForStatus((s) => s.lastCompletionMs !== undefined);
    assert.ok(status.lastCompletionMs! > 0);
  });

  test('settings apply per document: enable, disabled languages and the model', async () => {
    await server.configure((uri) => {
      if (uri?.includes('/off/')) return { ...base, completion: { ...base.completion, enable: false } };
      if (uri?.includes('/other/'))
        return { ...base, models: { completion: 'yankee' }, completion: { ...base.completion, maxTokens: 5 } };
      return { ...base, completion: { ...base.completion, maxTokens: 5, disabledLanguages: ['python'] } };
    });
    server.open('file:///work/off/b.ts', 'let a = ');
    server.open('file:///work/other/c.ts', 'let a = ');
    server.open('file:///work/d.py', 'a = ', 'python');
    server.open('file:///work/e.ts', 'let e = ');
    assert.deepEqual((await server.complete('file:///work/off/b.ts', 0, 8)).items, []);
    assert.deepEqual((await server.complete('file:///work/d.py', 0, 4)).items, []);
    assert.equal((await server.complete('file:///work/other/c.ts', 0, 8)).items[0].insertText, 'yyyyy');
    assert.equal((await server.complete('file:///work/e.ts', 0, 8)).items[0].insertText, 'xxxxx');
  });

  test('an unknown model in the settings falls back to the active model with a warning', async () => {
    await server.configure(() => ({
      ...base,
      models: { completion: 'missing-model' },
      completion: { ...base.completion, maxTokens: 3 },
    }));
    server.open('file:///work/unknown.ts', 'let u = ');
    assert.equal((await server.complete('file:///work/unknown.ts', 0, 8)).items[0].insertText, 'xxx');
    await server.waitForStatus((s) =>
      /unknown model "missing-model".*using the active model instead/.test(s.message ?? ''),
    );
  });

  test('automatic triggers are debounced; an explicit invocation answers at once', async () => {
    await server.configure(() => ({ ...base, completion: { ...base.completion, debounceMs: 400, maxTokens: 4 } }));
    const uri = 'file:///work/debounce.ts';
    server.open(uri, 'const first = ');
    const logsBefore = server.logs.length;
    // Two automatic triggers in a row: the first waits out the debounce, so the second one supersedes it.
    const started = performance.now();
    const superseded = server.complete(uri, 0, 14, 2);
    server.change(uri, 'const second = ');
    const automatic = server.complete(uri, 0, 15, 2);
    assert.deepEqual((await superseded).items, []);
    assert.equal((await automatic).items[0].insertText, 'xxxx');
    // A lower bound only: a timer never fires early, so this cannot fail on a slow machine.
    assert.ok(performance.now() - started >= 390, `automatic answered after ${performance.now() - started} ms`);
    // An explicit invocation goes ahead at once: an automatic trigger right after it does not supersede it.
    server.change(uri, 'const third = ');
    const invoked = server.complete(uri, 0, 14, 1);
    server.change(uri, 'const fourth = ');
    const following = server.complete(uri, 0, 15, 2);
    assert.equal((await invoked).items[0].insertText, 'xxxx');
    assert.equal((await following).items[0].insertText, 'xxxx');
    const outcomes = server.logs
      .slice(logsBefore)
      .map((l) => /^completion (model|cache|superseded):/.exec(l.message)?.[1])
      .filter((o) => o !== undefined);
    assert.deepEqual(outcomes, ['superseded', 'model', 'model', 'model'], 'one model run per request not superseded');
  });

  test('typing what was suggested is answered from the cache with the rest of the suggestion', async () => {
    await server.configure(() => ({ ...base, completion: { ...base.completion, maxTokens: 10 } }));
    const uri = 'file:///work/typing.ts';
    server.open(uri, 'let typed = ');
    assert.equal((await server.complete(uri, 0, 12)).items[0].insertText, 'x'.repeat(10));
    server.change(uri, 'let typed = xxx');
    const logsBefore = server.logs.length;
    assert.equal((await server.complete(uri, 0, 15)).items[0].insertText, 'x'.repeat(7));
    await server.waitForLog(/completion cache: .* 0 tokens generated/);
    assert.ok(server.logs.slice(logsBefore).some((l) => /completion cache/.test(l.message)));
  });

  test('cancelling a request stops decoding mid-way', async () => {
    await server.configure(() => ({ ...base, completion: { ...base.completion, maxTokens: 500, maxLines: 50 } }));
    const uri = 'file:///work/cancel.ts';
    server.open(uri, 'const long = ');
    const source = new CancellationTokenSource();
    const since = server.configurationRequests.length;
    const request = server.complete(uri, 0, 13, 1, source);
    await server.settingsAnswered(uri, since); // the request holds the model and is decoding
    source.cancel();
    await assert.rejects(request, (e: unknown) => (e as { code?: number }).code === LSPErrorCodes.RequestCancelled);
    const log = await server.waitForLog(/completion cancelled after \d+ of at most 500 tokens/);
    const generated = Number(/after (\d+)/.exec(log.message)![1]);
    assert.ok(generated >= 1 && generated < 500, `decoded ${generated} tokens`);
  });

  test('no suggestion when the model is unsure (confidence threshold)', async () => {
    await server.configure(() => ({
      models: { completion: 'random' },
      completion: { confidenceThreshold: 0.5, maxTokens: 8 },
    }));
    // A prompt after which the random model does not repeat itself (the repetition rule would drop that first).
    server.open('file:///work/unsure.ts', 'var maybe = ');
    assert.deepEqual((await server.complete('file:///work/unsure.ts', 0, 12)).items, []);
    await server.waitForLog(/not shown: low confidence/);
    await server.configure(() => ({
      models: { completion: 'random' },
      completion: { confidenceThreshold: 0, maxTokens: 8 },
    }));
    server.change('file:///work/unsure.ts', 'let maybe = 1;\nlet other = ');
    assert.equal((await server.complete('file:///work/unsure.ts', 1, 12)).items.length, 1);
  });
});
