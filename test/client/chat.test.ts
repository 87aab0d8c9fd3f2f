// Tests the @modelwright chat participant's handler (client/src/chat/chatHandler.ts) with fakes of VS Code's chat
// stream and of the server and commands: explanations streamed as Markdown, questions to the chat model with the
// history, and /train, /eval, /deploy saying what the commands did. Also the model picker's pure mappings
// (client/src/chat/languageModels.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as vscode from 'vscode';
import type { ChatTurn, ModelSummary, TrainingFigures } from '../../server/src/protocol';
import {
  type ChatDependencies,
  type ModelsSnapshot,
  chatHandler,
  commandOf,
  conversation,
  deploymentChanges,
  trainingSummary,
} from '../../client/src/chat/chatHandler';
import { chatModelInformation, estimateTokens, messageText, toChatTurns } from '../../client/src/chat/languageModels';

/** A chat response stream that records what the handler wrote. */
function fakeStream() {
  const parts: { kind: 'markdown' | 'progress' | 'button'; value: unknown }[] = [];
  const stream = {
    markdown: (value: string) => parts.push({ kind: 'markdown', value }),
    progress: (value: string) => parts.push({ kind: 'progress', value }),
    button: (value: vscode.Command) => parts.push({ kind: 'button', value }),
  } as unknown as vscode.ChatResponseStream;
  const markdown = () =>
    parts
      .filter((p) => p.kind === 'markdown')
      .map((p) => p.value)
      .join('');
  return { stream, parts, markdown };
}

const token = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) } as never;
const noHistory = { history: [] } as unknown as vscode.ChatContext;

function model(name: string, extra: Partial<ModelSummary> = {}): ModelSummary {
  return {
    name,
    path: `/m/${name}`,
    kind: 'causal-lm',
    bundled: false,
    sizeBytes: 1,
    status: 'idle',
    roles: [],
    ...extra,
  };
}

/** Dependencies whose snapshots change from `before` to `after` when the command runs. */
function fakeDependencies(overrides: Partial<ChatDependencies> & { before?: ModelsSnapshot; after?: ModelsSnapshot }) {
  const calls: string[] = [];
  let ran = false;
  const listeners: ((f: TrainingFigures) => void)[] = [];
  const deps: ChatDependencies = {
    codeToExplain: () => undefined,
    explain: async () => ({ text: '', model: 'none', lines: [] }),
    chat: async () => ({ model: 'none' }),
    runCommand: async (command) => {
      calls.push(command);
      ran = true;
    },
    snapshot: async () => (ran ? overrides.after : overrides.before) ?? { models: [], active: {} },
    onTrainingProgress: (listener) => {
      listeners.push(listener);
      return { dispose: () => listeners.splice(listeners.indexOf(listener), 1) };
    },
    ...overrides,
  };
  return { deps, calls, listeners };
}

function request(prompt: string, command?: string): vscode.ChatRequest {
  return { prompt, command, references: [] } as unknown as vscode.ChatRequest;
}

test('a slash command, an explain-like prompt and an empty one pick the command; other prompts are questions', () => {
  assert.equal(commandOf({ prompt: '', command: 'train' }), 'train');
  assert.equal(commandOf({ prompt: 'anything', command: 'deploy' }), 'deploy');
  assert.equal(commandOf({ prompt: '', command: undefined }), 'explain');
  assert.equal(commandOf({ prompt: 'Explain this function', command: undefined }), 'explain');
  assert.equal(commandOf({ prompt: 'what does this do?', command: undefined }), 'explain');
  assert.equal(commandOf({ prompt: 'How do I write a loop?', command: undefined }), 'question');
});

test('an explanation streams into the chat as Markdown, then names the code, unusual lines and the model', async () => {
  const explained: unknown[] = [];
  const { deps } = fakeDependencies({
    codeToExplain: () => ({ document: 'doc', range: 'range', label: 'example.ts, lines 1–5' }),
    explain: async (code, onChunk) => {
      explained.push(code.document, code.range);
      onChunk('**area** returns ');
      onChunk('the area of a shape.');
      return {
        text: '**area** returns the area of a shape.',
        model: 'chatty',
        lines: [{ line: 3, bitsPerToken: 9, unusual: true }],
      };
    },
  });
  const { stream, parts, markdown } = fakeStream();
  const result = await chatHandler(deps)(request('explain'), noHistory, stream, token);
  assert.deepEqual(explained, ['doc', 'range']);
  assert.equal(parts[0].kind, 'progress');
  assert.match(String(parts[0].value), /Explaining example\.ts, lines 1–5/);
  assert.ok(markdown().startsWith('**area** returns the area of a shape.'), markdown());
  assert.match(markdown(), /Unusual for this codebase: line 4\./);
  assert.match(markdown(), /example\.ts, lines 1–5, explained by chatty/);
  assert.deepEqual((result as vscode.ChatResult).metadata, { command: 'explain', model: 'chatty' });
});

test('a result longer than what streamed is completed from the final text', async () => {
  const { deps } = fakeDependencies({
    codeToExplain: () => ({ document: 1, range: 2, label: 'a.ts, line 1' }),
    explain: async (_code, onChunk) => {
      onChunk('Half');
      return { text: 'Half and the rest.', model: 'm', lines: [] };
    },
  });
  const { stream, markdown } = fakeStream();
  await chatHandler(deps)(request('', 'explain'), noHistory, stream, token);
  assert.ok(markdown().startsWith('Half and the rest.'), markdown());
});

test('/explain without an open file says what to do', async () => {
  const { deps } = fakeDependencies({});
  const { stream, markdown } = fakeStream();
  await chatHandler(deps)(request('', 'explain'), noHistory, stream, token);
  assert.match(markdown(), /Open a file or select some code/);
});

test('a question goes to the chat model with the conversation so far', async () => {
  let sent: ChatTurn[] = [];
  const { deps } = fakeDependencies({
    chat: async (messages, onChunk) => {
      sent = messages;
      onChunk('Use a for loop.');
      return { model: 'chatty' };
    },
  });
  const history = [
    { prompt: 'Hello', participant: 'modelwright.chat', references: [] },
    { response: [{ value: { value: 'Hi! Ask me about code.' } }], result: {}, participant: 'modelwright.chat' },
  ];
  const { stream, markdown } = fakeStream();
  const result = await chatHandler(deps)(
    request('How do I write a loop?'),
    { history } as unknown as vscode.ChatContext,
    stream,
    token,
  );
  assert.deepEqual(sent, [
    { role: 'user', content: 'Hello' },
    { role: 'assistant', content: 'Hi! Ask me about code.' },
    { role: 'user', content: 'How do I write a loop?' },
  ]);
  assert.equal(markdown(), 'Use a for loop.');
  assert.equal((result as vscode.ChatResult).metadata?.model, 'chatty');
  assert.deepEqual(conversation('x', []), [{ role: 'user', content: 'x' }]);
});

test('/train runs Train Model, shows its progress, and says what it trained with buttons to go on', async () => {
  const figures = (step: number, phase: TrainingFigures['phase'], fraction: number): TrainingFigures => ({
    name: 'mine',
    phase,
    message: '',
    step,
    totalSteps: 100,
    elapsedSeconds: step,
    fraction,
    loss: 2.5 - step / 100,
    valLoss: 2.75,
  });
  const fake = fakeDependencies({
    before: { models: [model('default')], active: { completion: 'default' } },
    after: { models: [model('default'), model('mine')], active: { completion: 'default' } },
  });
  fake.deps.runCommand = async (command) => {
    fake.calls.push(command);
    for (const listener of [...fake.listeners]) {
      listener(figures(1, 'training', 0.01));
      listener(figures(2, 'training', 0.02)); // the same tenth: not shown again
      listener(figures(100, 'done', 1));
    }
    fake.deps.snapshot = async () => ({
      models: [model('default'), model('mine')],
      active: { completion: 'default' },
    });
  };
  const { stream, parts, markdown } = fakeStream();
  const result = await chatHandler(fake.deps)(request('', 'train'), noHistory, stream, token);
  assert.deepEqual(fake.calls, ['train']);
  const progress = parts.filter((p) => p.kind === 'progress').map((p) => String(p.value));
  assert.equal(progress.filter((p) => p.startsWith('Training mine')).length, 2, progress.join(' | '));
  assert.match(markdown(), /Trained \*\*mine\*\*: 100 steps, loss 1\.500, validation loss 2\.750/);
  const buttons = parts.filter((p) => p.kind === 'button').map((p) => (p.value as vscode.Command).command);
  assert.deepEqual(buttons, ['modelwright.evaluateModel', 'modelwright.deployModel']);
  assert.equal(fake.listeners.length, 0, 'the progress listener is disposed');
  assert.deepEqual((result as vscode.ChatResult).metadata, { command: 'train', model: 'mine' });
});

test('/train cancelled before it started says so', async () => {
  const { deps } = fakeDependencies({
    before: { models: [model('default')], active: {} },
    after: { models: [model('default')], active: {} },
  });
  const { stream, markdown } = fakeStream();
  await chatHandler(deps)(request('', 'train'), noHistory, stream, token);
  assert.match(markdown(), /No model was trained/);
});

test('/eval reports the metrics of the model it evaluated, /deploy the roles that changed', async () => {
  const metrics = {
    at: '2026-12-02T00:00:00Z',
    valLoss: 1.25,
    perplexity: 3.49,
    exactMatch: 0.5,
    editSimilarity: 0.75,
    latencyMs: { p50: 20, p95: 30 },
    samples: 8,
  };
  const evaluation = fakeDependencies({
    before: { models: [model('mine')], active: {} },
    after: { models: [model('mine', { metrics })], active: {} },
  });
  const evalStream = fakeStream();
  await chatHandler(evaluation.deps)(request('', 'eval'), noHistory, evalStream.stream, token);
  assert.deepEqual(evaluation.calls, ['eval']);
  assert.match(evalStream.markdown(), /Evaluated \*\*mine\*\*/);
  assert.match(evalStream.markdown(), /\| metric \| value \|/);

  const unchanged = fakeDependencies({ before: { models: [model('mine', { metrics })], active: {} } });
  unchanged.deps.snapshot = async () => ({ models: [model('mine', { metrics })], active: {} });
  const noEvalStream = fakeStream();
  await chatHandler(unchanged.deps)(request('', 'eval'), noHistory, noEvalStream.stream, token);
  assert.match(noEvalStream.markdown(), /No evaluation ran/);

  const deployment = fakeDependencies({
    before: { models: [model('mine')], active: { completion: 'default', explanation: 'default' } },
    after: { models: [model('mine')], active: { completion: 'mine', explanation: 'default' } },
  });
  const deployStream = fakeStream();
  await chatHandler(deployment.deps)(request('', 'deploy'), noHistory, deployStream.stream, token);
  assert.deepEqual(deployment.calls, ['deploy']);
  assert.equal(deployStream.markdown(), '**mine** now serves inline completions.');
  assert.deepEqual(deploymentChanges({ completion: 'a' }, { completion: 'a' }), []);
  assert.deepEqual(deploymentChanges({}, { explanation: 'b' }), [{ role: 'explanation', model: 'b' }]);
});

test('a training summary without figures, or a failed one, says what is known', () => {
  assert.equal(trainingSummary('x', undefined), 'Trained **x**.');
  const failed = {
    name: 'x',
    phase: 'failed',
    message: 'out of memory',
    step: 3,
    totalSteps: 9,
    elapsedSeconds: 1,
  } as const;
  assert.equal(trainingSummary('x', failed), 'Training **x** failed: out of memory');
});

test('the model picker lists the chat models with their context split between input and output', () => {
  const models = [
    model('default', { bundled: true }),
    model('Qwen--Chat-q8', { chat: true, modelType: 'qwen2', contextLength: 32768, dtype: 'q8' }),
    model('tiny-chat', { chat: true, contextLength: 256 }),
    model('classifier', { kind: 'text-classification', chat: true }),
  ];
  const info = chatModelInformation(models, 512);
  assert.deepEqual(
    info.map((i) => i.id),
    ['Qwen--Chat-q8', 'tiny-chat'],
  );
  assert.equal(info[0].family, 'qwen2');
  assert.equal(info[0].maxOutputTokens, 512);
  assert.equal(info[0].maxInputTokens, 32768 - 512);
  assert.equal(info[1].maxOutputTokens, 128, 'at most half of a small context');
  assert.equal(info[1].maxInputTokens, 128);
  assert.match(info[0].tooltip ?? '', /nothing is sent elsewhere/);
});

test("the editor's messages become chat turns: text parts joined, tool results by their text, empty ones dropped", () => {
  const messages = [
    { role: 1, content: [{ value: 'Explain ' }, { value: 'this.' }], name: undefined },
    { role: 2, content: [{ value: 'Sure.' }, { callId: 'c', name: 'tool', input: {} }], name: undefined },
    { role: 1, content: [{ callId: 'c', content: [{ value: 'tool says hi' }] }], name: undefined },
    { role: 1, content: [{ mimeType: 'image/png', data: new Uint8Array(1) }], name: undefined },
  ];
  assert.deepEqual(toChatTurns(messages), [
    { role: 'user', content: 'Explain this.' },
    { role: 'assistant', content: 'Sure.' },
    { role: 'user', content: 'tool says hi' },
  ]);
  assert.equal(messageText(['plain', { value: ' text' }, 7]), 'plain text');
  assert.equal(estimateTokens('abcdefg'), 2);
  assert.equal(estimateTokens(messages[0]), Math.ceil('Explain this.'.length / 3.5));
});
