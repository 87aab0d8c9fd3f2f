// Text in, text out over the Open Inference Protocol, as Triton's LLM backends do it: an infer request whose input is
// a BYTES tensor "text_input" (one string per batch row) answers a BYTES tensor "text_output", and the generate
// extension POST /v2/models/{name}/generate takes {"text_input", "parameters"}. Both decode like /v1/completions;
// the parameters max_tokens, temperature, top_p, top_k, seed, stop and ignore_eos are checked by the same rules.
import { fitPrompt } from '../runtime/promptWindow';
import type { CompletionOutcome } from './batchScheduler';
import { badRequest } from './errors';
import type { ServedModel } from './modelSet';
import { batchRequests, checkSamplingForModel } from './openaiShared';
import { REQUEST_LIMITS, parseCompletionParams } from './requestParams';
import { checkParameters } from './tensorCodec';

export const TEXT_INPUT = 'text_input';
export const TEXT_OUTPUT = 'text_output';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The prompts of an infer request that sends text, or undefined when it sends tensors for the graph. */
export function textInferPrompts(body: unknown): string[] | undefined {
  if (!isObject(body) || !Array.isArray(body.inputs)) return undefined;
  const input = body.inputs.find((i) => isObject(i) && i.name === TEXT_INPUT);
  if (!isObject(input)) return undefined;
  if (body.inputs.length !== 1) throw badRequest(`"${TEXT_INPUT}" must be the only input`);
  if (input.datatype !== 'BYTES') throw badRequest(`input "${TEXT_INPUT}" must have datatype BYTES`);
  const shape = input.shape;
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 2 || !shape.every((d) => Number.isSafeInteger(d)))
    throw badRequest(`input "${TEXT_INPUT}" needs "shape" [batch] or [batch, 1]`);
  if (shape.length === 2 && shape[1] !== 1)
    throw badRequest(`input "${TEXT_INPUT}" needs "shape" [batch] or [batch, 1]`);
  const rows = shape[0] as number;
  if (rows < 1 || rows > REQUEST_LIMITS.prompts)
    throw badRequest(`input "${TEXT_INPUT}" may have 1 to ${REQUEST_LIMITS.prompts} strings`);
  const data = Array.isArray(input.data) ? input.data.flat() : undefined;
  if (!data || data.length !== rows || !data.every((d) => typeof d === 'string'))
    throw badRequest(`input "${TEXT_INPUT}" needs "data": ${rows} string${rows > 1 ? 's' : ''} (BYTES as UTF-8 text)`);
  checkParameters(input.parameters, 'inputs[0].parameters');
  return data as string[];
}

/** Generates a completion per prompt with the request's parameters (the completions defaults, but greedy). */
export async function generateTexts(
  model: ServedModel,
  prompts: readonly string[],
  parameters: unknown,
  signal: AbortSignal,
): Promise<CompletionOutcome[]> {
  const given = checkParameters(parameters, 'parameters');
  const known = ['max_tokens', 'temperature', 'top_p', 'top_k', 'seed', 'stop', 'ignore_eos'];
  const body: Record<string, unknown> = { temperature: 0 };
  for (const key of known) if (key in given) body[key] = given[key];
  const params = parseCompletionParams({ ...body, prompt: [...prompts] });
  const { contextLength, bosTokenId } = model.decoder.config;
  const maxTokens = params.maxTokens ?? 16;
  if (maxTokens < 1 || maxTokens >= contextLength)
    throw badRequest(`"max_tokens" must be from 1 to ${contextLength - 1}`, 'max_tokens');
  checkSamplingForModel(model, params);
  const choices = prompts.map((prompt, index) => ({
    promptIds: fitPrompt(model.tokenizer.encode(prompt), maxTokens, contextLength, bosTokenId),
    index,
  }));
  return Promise.all(model.scheduler.complete(batchRequests(params, choices, maxTokens, undefined, signal)));
}
