// What the @modelwright chat participant does with a request: explains the referenced code, the selection or the
// active file with the explanation model (streamed as Markdown), answers /train, /eval and /deploy by running those
// commands and saying what they did, and passes other questions to the local chat model. Only VS Code's types are
// imported: participant.ts supplies the editor, the server and the commands, and tests supply fakes.
import type * as vscode from 'vscode';
import type { ChatTurn, Explain, ModelSummary, ServerStatus, TrainingFigures } from '../../../server/src/protocol';
import { describeTraining, metricRows, trainingFraction } from '../format';

/** The code a request is about: a document and the lines of it, with a label such as "example.ts, lines 1–5". */
export interface CodeToExplain<Document = unknown, Range = unknown> {
  document: Document;
  range: Range;
  label: string;
}

export type ChatCommand = 'train' | 'eval' | 'deploy' | 'explain';

/** The models and the active roles, to tell what a command changed. */
export interface ModelsSnapshot {
  models: ModelSummary[];
  active: ServerStatus['active'];
}

export interface ChatDependencies {
  /** The code of the request's references, else the selection, else the whole active file; undefined: none. */
  codeToExplain(references: readonly vscode.ChatPromptReference[]): CodeToExplain | undefined;
  explain(
    code: CodeToExplain,
    onChunk: (text: string) => void,
    token: vscode.CancellationToken,
  ): Promise<Explain.Result>;
  /** A conversation with the chat model (the explanation role's, when it has a chat template). */
  chat(
    messages: ChatTurn[],
    onChunk: (text: string) => void,
    token: vscode.CancellationToken,
  ): Promise<{ model: string }>;
  /** Runs Train Model…, Evaluate Model… or Deploy Model…, with their questions and progress notifications. */
  runCommand(command: 'train' | 'eval' | 'deploy'): Promise<unknown>;
  snapshot(): Promise<ModelsSnapshot>;
  onTrainingProgress(listener: (figures: TrainingFigures) => void): vscode.Disposable;
}

export interface ChatOutcome extends vscode.ChatResult {
  metadata: { command: ChatCommand | 'question'; model?: string };
}

/** The participant's id in `contributes.chatParticipants`. */
export const participantId = 'modelwright.chat';

/** The participant's slash commands as package.json contributes them. */
export const chatCommands: readonly { name: ChatCommand; description: string }[] = [
  { name: 'explain', description: 'Explain the selection or the active file with the explanation model' },
  { name: 'train', description: 'Train a model on this workspace (Train Model…)' },
  { name: 'eval', description: 'Evaluate a model on this workspace (Evaluate Model…)' },
  { name: 'deploy', description: 'Deploy a model for completions, explanations or the HTTP service' },
];

const explainWords = /^\s*(explain|what does (this|it) do|what is this)\b/i;

/** Which command a request means: its slash command, else "explain" for an explain-like or empty prompt. */
export function commandOf(request: Pick<vscode.ChatRequest, 'command' | 'prompt'>): ChatCommand | 'question' {
  const command = request.command;
  if (command === 'train' || command === 'eval' || command === 'deploy' || command === 'explain') return command;
  return !request.prompt.trim() || explainWords.test(request.prompt) ? 'explain' : 'question';
}

export function chatHandler(deps: ChatDependencies): vscode.ChatRequestHandler {
  return async (request, context, stream, token): Promise<ChatOutcome> => {
    const command = commandOf(request);
    if (command === 'train') return train(deps, stream);
    if (command === 'eval') return evaluate(deps, stream);
    if (command === 'deploy') return deploy(deps, stream);
    const code = deps.codeToExplain(request.references);
    if (command === 'explain' || code) {
      if (!code) {
        stream.markdown('Open a file or select some code, then ask me to explain it.');
        return { metadata: { command: 'explain' } };
      }
      return explainCode(deps, code, stream, token);
    }
    return answer(deps, request.prompt, context, stream, token);
  };
}

async function explainCode(
  deps: ChatDependencies,
  code: CodeToExplain,
  stream: vscode.ChatResponseStream,
  token: vscode.CancellationToken,
): Promise<ChatOutcome> {
  stream.progress(`Explaining ${code.label}…`);
  let streamed = '';
  const result = await deps.explain(
    code,
    (chunk) => {
      streamed += chunk;
      stream.markdown(chunk);
    },
    token,
  );
  // A server that did not stream (or streamed only part) still gives the whole text at the end.
  if (result.text.startsWith(streamed) && result.text.length > streamed.length)
    stream.markdown(result.text.slice(streamed.length));
  const unusual = result.lines.filter((l) => l.unusual).map((l) => l.line + 1);
  if (unusual.length)
    stream.markdown(`\n\nUnusual for this codebase: line${unusual.length > 1 ? 's' : ''} ${unusual.join(', ')}.`);
  stream.markdown(`\n\n_${code.label}, explained by ${result.model}._`);
  return { metadata: { command: 'explain', model: result.model } };
}

/** The conversation so far with this participant, then the new prompt, as chat turns. */
export function conversation(prompt: string, history: vscode.ChatContext['history']): ChatTurn[] {
  const turns: ChatTurn[] = [];
  for (const turn of history) {
    if ('prompt' in turn) turns.push({ role: 'user', content: turn.prompt });
    else {
      const text = turn.response
        .map((part) => {
          const value = (part as { value?: unknown }).value;
          return value && typeof value === 'object' && 'value' in value ? String(value.value) : '';
        })
        .join('');
      if (text) turns.push({ role: 'assistant', content: text });
    }
  }
  turns.push({ role: 'user', content: prompt });
  return turns;
}

async function answer(
  deps: ChatDependencies,
  prompt: string,
  context: vscode.ChatContext,
  stream: vscode.ChatResponseStream,
  token: vscode.CancellationToken,
): Promise<ChatOutcome> {
  stream.progress('Asking the local chat model…');
  const reply = await deps.chat(conversation(prompt, context.history), (chunk) => stream.markdown(chunk), token);
  return { metadata: { command: 'question', model: reply.model } };
}

async function train(deps: ChatDependencies, stream: vscode.ChatResponseStream): Promise<ChatOutcome> {
  const before = await deps.snapshot();
  stream.progress('Train Model: answer its questions at the top of the window…');
  let last: TrainingFigures | undefined;
  let shownPercent = -1;
  const figures = deps.onTrainingProgress((f) => {
    last = f;
    const percent = Math.floor(trainingFraction(f) * 10) * 10;
    if (percent === shownPercent) return;
    shownPercent = percent;
    stream.progress(`Training ${f.name}: ${describeTraining(f)}`);
  });
  try {
    await deps.runCommand('train');
  } finally {
    figures.dispose();
  }
  const after = await deps.snapshot();
  const added = after.models.find((m) => !before.models.some((b) => b.name === m.name));
  const name = added?.name ?? last?.name;
  if (!name) {
    stream.markdown('No model was trained: Train Model was cancelled before it started.');
    return { metadata: { command: 'train' } };
  }
  stream.markdown(trainingSummary(name, last));
  stream.button({ command: 'modelwright.evaluateModel', title: 'Evaluate', arguments: [modelNode(after, name)] });
  stream.button({ command: 'modelwright.deployModel', title: 'Deploy', arguments: [modelNode(after, name)] });
  return { metadata: { command: 'train', model: name } };
}

/** What a training did, from its last figures. */
export function trainingSummary(name: string, last: TrainingFigures | undefined): string {
  if (!last || last.name !== name) return `Trained **${name}**.`;
  if (last.phase === 'failed') return `Training **${name}** failed: ${last.message}`;
  const loss = last.loss !== undefined ? `, loss ${last.loss.toFixed(3)}` : '';
  const valLoss = last.valLoss !== undefined ? `, validation loss ${last.valLoss.toFixed(3)}` : '';
  const steps = `${last.step} step${last.step === 1 ? '' : 's'}`;
  return `Trained **${name}**: ${steps}${loss}${valLoss}. It is in the Models view; evaluate it or deploy it.`;
}

async function evaluate(deps: ChatDependencies, stream: vscode.ChatResponseStream): Promise<ChatOutcome> {
  const before = await deps.snapshot();
  stream.progress('Evaluate Model: pick the model and the folder; the progress is in the notification…');
  await deps.runCommand('eval');
  const after = await deps.snapshot();
  const evaluated = after.models.find((m) => {
    const previous = before.models.find((b) => b.name === m.name);
    return m.metrics && m.metrics.at !== previous?.metrics?.at;
  });
  if (!evaluated?.metrics) {
    stream.markdown('No evaluation ran: Evaluate Model was cancelled or failed (see the notification).');
    return { metadata: { command: 'eval' } };
  }
  const rows = metricRows(evaluated.metrics)
    .map(([metric, value]) => `| ${metric} | ${value} |`)
    .join('\n');
  stream.markdown(`Evaluated **${evaluated.name}**:\n\n| metric | value |\n| --- | --- |\n${rows}\n`);
  return { metadata: { command: 'eval', model: evaluated.name } };
}

async function deploy(deps: ChatDependencies, stream: vscode.ChatResponseStream): Promise<ChatOutcome> {
  const before = await deps.snapshot();
  stream.progress('Deploy Model: pick the model and where it serves…');
  await deps.runCommand('deploy');
  const after = await deps.snapshot();
  const changed = deploymentChanges(before.active, after.active);
  if (changed.length === 0) {
    stream.markdown(
      'The editor roles did not change: Deploy Model was cancelled, redeployed the same model, or started the ' +
        'HTTP service (its address is in the notification).',
    );
    return { metadata: { command: 'deploy' } };
  }
  stream.markdown(
    changed
      .map((c) => `**${c.model}** now serves ${c.role === 'completion' ? 'inline completions' : 'explanations'}.`)
      .join('\n\n'),
  );
  return { metadata: { command: 'deploy', model: changed[0].model } };
}

/** The roles whose active model changed. */
export function deploymentChanges(
  before: ServerStatus['active'],
  after: ServerStatus['active'],
): { role: 'completion' | 'explanation'; model: string }[] {
  return (['completion', 'explanation'] as const)
    .filter((role) => after[role] && after[role] !== before[role])
    .map((role) => ({ role, model: after[role] as string }));
}

function modelNode(snapshot: ModelsSnapshot, name: string): { kind: 'model'; model: ModelSummary } | undefined {
  const model = snapshot.models.find((m) => m.name === name);
  return model && { kind: 'model', model };
}
