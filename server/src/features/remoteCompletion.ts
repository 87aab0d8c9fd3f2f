// Inline suggestions from a remote endpoint: the text before the cursor (and after it, for servers that take a
// fill-in-the-middle `suffix`) as the prompt, streamed so that the local stop rules can end it early, then the same
// post-processing filters as local suggestions. The completion pipeline's cache and debounce apply as well.
import { completionContext } from '../completion/completionContext';
import type { CompletionPipeline, EditorCompletionRequest } from '../completion/completionPipeline';
import { postprocess } from '../completion/postprocess';
import { type Stop, StreamedStop, findStop, stopRuleContext } from '../completion/stopRules';
import { type RemoteClient, isUnsupported } from '../serve/remoteClient';

/** Characters of the document before the cursor sent as the prompt (from a line start), and after it as suffix. */
export const PROMPT_CHARACTERS = 8000;
export const SUFFIX_CHARACTERS = 2000;

/** An editor's request as the local pipeline takes it, without the workspace context a remote server can't use. */
export type RemoteCompletionRequest = Omit<EditorCompletionRequest, 'workspaceContext'>;

export interface RemoteSuggestion {
  text: string;
  source: 'remote' | 'cache' | 'superseded';
  stop?: Stop['rule'] | 'eos' | 'length';
  generatedTokens?: number;
}

/** Servers that answered a `suffix` with "not supported" (vLLM does): asked without it from then on. */
const withoutSuffix = new WeakSet<RemoteClient>();

/**
 * A suggestion from `client`, through the pipeline's cache and debouncer; `call` wraps the HTTP calls (the remote
 * roles' health bookkeeping). Throws what `call` throws.
 */
export async function remoteSuggestion(
  client: RemoteClient,
  cacheKey: string,
  pipeline: CompletionPipeline,
  request: RemoteCompletionRequest,
  call: <T>(work: () => Promise<T>) => Promise<T>,
): Promise<RemoteSuggestion> {
  const context = completionContext(request.text, request.offset, request.languageId);
  const key = { uri: request.uri, modelKey: cacheKey };
  const position = { prefix: context.prefix, lineSuffix: context.lineSuffix };
  const cached = pipeline.cache.lookup(key, position);
  if (cached !== undefined) return { text: cached, source: 'cache' };
  if (request.invoked) pipeline.debouncer.supersede(request.uri);
  else if (!(await pipeline.debouncer.wait(request.uri, request.settings.debounceMs, request.signal)))
    return { text: '', source: 'superseded' };

  const rules = stopRuleContext(context, request.settings);
  let prompt = context.prefix.slice(-PROMPT_CHARACTERS);
  if (prompt.length < context.prefix.length && prompt.includes('\n')) prompt = prompt.slice(prompt.indexOf('\n') + 1);
  const suffix =
    (request.settings.suffixTokens ?? 1) > 0 && context.suffix.trim() && !withoutSuffix.has(client)
      ? context.suffix.slice(0, SUFFIX_CHARACTERS)
      : undefined;

  const stopper = new AbortController();
  let streamed = new StreamedStop(rules, () => stopper.abort());
  const ask = (withSuffix: string | undefined) => {
    streamed = new StreamedStop(rules, () => stopper.abort());
    return client.complete(prompt, {
      maxTokens: request.settings.maxTokens,
      temperature: 0,
      suffix: withSuffix,
      signal: AbortSignal.any([request.signal, stopper.signal]),
      onText: (piece) => streamed.add(piece),
    });
  };
  /** The answer, or undefined when a stop rule ended the stream (the text is then in `streamed`). */
  const askUntilStop = async (withSuffix: string | undefined) => {
    try {
      return await ask(withSuffix);
    } catch (error) {
      if (stopper.signal.aborted && !request.signal.aborted) return undefined;
      throw error;
    }
  };
  const answer = await call(async () => {
    try {
      return await askUntilStop(suffix);
    } catch (error) {
      if (suffix === undefined || !isUnsupported(error)) throw error;
      withoutSuffix.add(client);
      return await askUntilStop(undefined);
    }
  });
  const text = answer ? answer.text : streamed.text;
  const finishReason = answer ? answer.finishReason : 'stopped';
  const generatedTokens = answer?.completionTokens;
  const stop = streamed.stop ?? findStop(text, rules, true);
  let kept = stop ? text.slice(0, stop.at) : text;
  if (!stop && finishReason === 'length' && !context.singleLine && kept.includes('\n'))
    kept = kept.slice(0, kept.lastIndexOf('\n')); // the last line was cut by the token limit
  const suggestion = postprocess(kept, {
    lineSuffix: context.lineSuffix,
    suffix: context.suffix,
    openBeforeCursor: context.openBeforeCursor,
    lineComment: context.lineComment,
  });
  pipeline.cache.store(key, position, suggestion);
  return {
    text: suggestion,
    source: 'remote',
    stop: stop?.rule ?? (finishReason === 'length' ? 'length' : 'eos'),
    generatedTokens,
  };
}
