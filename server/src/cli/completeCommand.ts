// `modelwright complete`: one completion at a cursor (the prompt is the text before it, --suffix the text after)
// through the editor's pipeline — its prompt, stop rules and filters — greedy like the editor, or sampled with
// --temperature/--top-p/--seed through the same stop rules and filters. Bold only on a TTY without NO_COLOR.
import * as path from 'node:path';
import type { Command } from 'commander';
import { completionContext } from '../completion/completionContext';
import { type CompletionModel, CompletionPipeline } from '../completion/completionPipeline';
import { postprocess } from '../completion/postprocess';
import { StreamedStop, findStop, stopRuleContext } from '../completion/stopRules';
import { ensureRunnable } from '../convert/convertFolder';
import { numericSettings } from '../protocol';
import { disposeModel, type LanguageServingModel, loadServingModel } from '../registry/servingModel';
import { withoutLastSpace } from '../runtime/completionText';
import { generate } from '../runtime/generate';
import { isIncomplete } from '../train/finalExport';
import { integer, nonNegativeNumber, positiveInteger, positiveNumber, UsageError, usesAnsi } from './options';

interface CompleteFlags {
  model: string;
  prompt: string;
  suffix: string;
  language: string;
  maxTokens: number;
  maxLines: number;
  greedy?: boolean;
  temperature: number;
  topP: number;
  seed?: number;
  minConfidence: number;
  json?: boolean;
}

export interface CliCompletion {
  text: string;
  /** Why the completion ended: a stop rule, the end-of-text token or the token limit. */
  stop?: string;
  promptTokens: number;
  generatedTokens: number;
  meanProbability?: number;
  /** Why a generated completion was not shown. */
  rejected?: string;
}

export function addCompleteCommand(program: Command): void {
  program
    .command('complete')
    .summary('complete code at a cursor with a model folder')
    .description(
      'Completes the text at a cursor as the editor does: the prompt (with fill-in-the-middle when the model ' +
        'was trained for it), the stop rules (end of block, dedent, a line repeating the text after the cursor, a ' +
        'line repeating itself, --max-lines) and the filters (suffix overlap, duplicated closers, bracket balance). Greedy with ' +
        '--greedy or --temperature 0, otherwise sampled.',
    )
    .requiredOption('--model <modeldir>', 'the model folder')
    .requiredOption('--prompt <text>', 'the text before the cursor')
    .option('--suffix <text>', 'the text after the cursor', '')
    .option('--language <id>', 'language id of the text (for comments and brackets)', 'typescript')
    .option(
      '--max-tokens <n>',
      'most tokens to generate',
      positiveInteger,
      numericSettings['completion.maxTokens'].default,
    )
    .option(
      '--max-lines <n>',
      'most lines of a completion',
      positiveInteger,
      numericSettings['completion.maxLines'].default,
    )
    .option('--greedy', 'always the most likely token (same as --temperature 0)')
    .option('--temperature <x>', 'sampling temperature; 0 is greedy', nonNegativeNumber, 0.7)
    .option('--top-p <x>', 'nucleus sampling: keep the most likely tokens up to this probability', positiveNumber, 0.95)
    .option('--seed <n>', 'seed for reproducible sampling (default: random)', integer)
    .option('--min-confidence <x>', 'mean token probability below which nothing is shown', nonNegativeNumber, 0)
    .option('--json', 'print {text, stop, promptTokens, generatedTokens, meanProbability} as JSON')
    .action(async (flags: CompleteFlags) => runComplete(flags));
}

async function runComplete(flags: CompleteFlags): Promise<void> {
  if (flags.topP > 1) throw new UsageError('--top-p must be at most 1');
  if (isIncomplete(flags.model)) throw new UsageError(`${flags.model} is an unfinished training run, not a model`);
  ensureRunnable(flags.model, (message) => process.stderr.write(`${message}\n`));
  const dir = path.resolve(flags.model);
  const model = (await loadServingModel(
    { name: path.basename(dir), dir, bundled: false },
    'language',
    'cli',
    1,
  )) as LanguageServingModel;
  try {
    const temperature = flags.greedy ? 0 : flags.temperature;
    // A prompt's final space is left for the model to write: in training text it is part of the next word's
    // token, so a prompt ending in it (as after indentation) tokenizes unlike anything the model saw.
    const asked = { ...flags, prompt: withoutLastSpace(flags.prompt) };
    const healed = asked.prompt !== flags.prompt;
    const completion =
      temperature === 0 ? await greedyCompletion(model, asked) : await sampledCompletion(model, asked, temperature);
    if (healed) completion.text = completion.text.startsWith(' ') ? completion.text.slice(1) : completion.text;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(completion)}\n`);
    } else {
      const bold = usesAnsi(process.stdout) ? (s: string) => `\x1b[1m${s}\x1b[0m` : (s: string) => s;
      process.stdout.write(`${flags.prompt}${bold(completion.text)}${flags.suffix}\n`);
      if (completion.rejected) process.stderr.write(`(no completion: ${completion.rejected})\n`);
    }
  } finally {
    await disposeModel(model);
  }
}

const settings = (flags: CompleteFlags) => ({
  enable: true,
  disabledLanguages: [],
  maxTokens: flags.maxTokens,
  maxLines: flags.maxLines,
  debounceMs: 0,
  confidenceThreshold: flags.minConfidence,
});

/** Exactly the editor's pipeline, invoked explicitly (no debounce). */
async function greedyCompletion(model: CompletionModel, flags: CompleteFlags): Promise<CliCompletion> {
  const pipeline = new CompletionPipeline({ reuseKvCache: false });
  const outcome = await pipeline.complete(model, {
    uri: 'cli:prompt',
    text: flags.prompt + flags.suffix,
    offset: flags.prompt.length,
    languageId: flags.language,
    invoked: true,
    settings: settings(flags),
    signal: new AbortController().signal,
  });
  return {
    text: outcome.text,
    stop: outcome.stop,
    promptTokens: outcome.promptTokens,
    generatedTokens: outcome.generatedTokens,
    meanProbability: outcome.meanProbability,
    rejected: outcome.rejected,
  };
}

/** Sampled decoding with the pipeline's stop rules and filters (the editor itself decodes greedily). */
async function sampledCompletion(
  model: CompletionModel,
  flags: CompleteFlags,
  temperature: number,
): Promise<CliCompletion> {
  const context = completionContext(flags.prompt + flags.suffix, flags.prompt.length, flags.language);
  const rules = stopRuleContext(context, flags);
  const stopper = new AbortController();
  const streamed = new StreamedStop(rules, () => stopper.abort());
  const result = await generate(model.languageModel, flags.prompt, {
    maxTokens: flags.maxTokens,
    temperature,
    topP: flags.topP,
    seed: flags.seed,
    signal: stopper.signal,
    onToken: (piece) => streamed.add(piece),
  });
  const stop = streamed.stop ?? findStop(result.text, rules, true);
  const kept = stop ? result.text.slice(0, stop.at) : result.text;
  const text = postprocess(kept, {
    lineSuffix: context.lineSuffix,
    suffix: context.suffix,
    openBeforeCursor: context.openBeforeCursor,
    lineComment: context.lineComment,
  });
  const probabilities = result.tokenProbabilities;
  const meanProbability = probabilities.length
    ? probabilities.reduce((a, b) => a + b, 0) / probabilities.length
    : undefined;
  const rejected = text === '' ? 'empty' : (meanProbability ?? 1) < flags.minConfidence ? 'low confidence' : undefined;
  return {
    text: rejected ? '' : text,
    stop: stop?.rule ?? (result.finishReason === 'eos' ? 'eos' : 'length'),
    promptTokens: result.tokenIds.length - result.generatedIds.length,
    generatedTokens: result.generatedIds.length,
    meanProbability,
    rejected,
  };
}
