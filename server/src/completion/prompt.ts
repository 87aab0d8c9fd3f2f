// The token prompt: the prefix from a line-aligned anchor kept per document, so consecutive requests share their
// first tokens and reuse the previous KV cache (the anchor moves only when the prompt outgrows its budget); or, for
// models trained with fill-in-the-middle only, <|fim_prefix|>…<|fim_suffix|>…<|fim_middle|> in the model family's
// spelling (tokenizer/fimFormats.ts). Workspace context, already rendered, goes first (or, in the file-separator
// style, before the FIM prefix token), so it is part of the shared start of consecutive prompts. While the user
// types on, a FIM prompt is continued with the typed text as the start of the middle (continuePrompt).
import { findFimTokens } from '../tokenizer/fimFormats';

export interface PromptTokenizer {
  encode(text: string): number[];
  tokenId(token: string): number | undefined;
}

export interface PromptOptions {
  /** Most prompt tokens (the model's context minus the tokens to generate). */
  budget: number;
  /** Start of the previous prompt in this document (a character offset), reused when it still fits. */
  anchor?: number;
  /** Put before a prompt that starts at the beginning of the document (documents are separated by it in training). */
  documentStartId?: number;
  fillInTheMiddle?: boolean;
  /** Rendered workspace context: its token ids, and whether they go before the FIM prefix token. */
  context?: { ids: readonly number[]; beforeFimPrefix: boolean };
  /** Most tokens of the text after the cursor in a FIM prompt (default: what is left of a quarter of the budget). */
  suffixBudget?: number;
}

export interface Prompt {
  ids: number[];
  /** Character offset where the prompt's prefix text starts. */
  anchor: number;
  fillInTheMiddle: boolean;
  /** Tokens of workspace context in the prompt (they come first, after a document-start token if any). */
  contextTokens: number;
  /** What a fill-in-the-middle prompt was built from and its ids then, so that typing on can continue it. */
  built?: { prefix: string; suffix: string; context: readonly number[]; ids: readonly number[] };
}

/**
 * A new anchor starts the prompt at this share of the budget; it is kept while the prompt stays within KEEP_SHARE
 * of it. The room between is what the user can type before the prompt (and the KV cache) starts over; the cap
 * keeps prompts short because every generated token attends to (and copies) the whole cache.
 */
const NEW_ANCHOR_SHARE = 0.6;
const KEEP_SHARE = 0.85;

export function buildPrompt(
  tokenizer: PromptTokenizer,
  prefix: string,
  suffix: string,
  options: PromptOptions,
): Prompt {
  const budget = Math.max(1, Math.floor(options.budget));
  const fim = options.fillInTheMiddle ? findFimTokens((token) => tokenizer.tokenId(token)) : undefined;
  if (options.fillInTheMiddle && !fim) throw new Error('the tokenizer has no fill-in-the-middle tokens');
  const contextIds = options.context && options.context.ids.length < budget - 4 ? [...options.context.ids] : [];
  if (fim) {
    // Three quarters of the room for the prefix, the rest for the suffix (cut at line ends).
    const room = Math.max(1, budget - 3 - contextIds.length);
    const prefixPart = promptFrom(tokenizer, prefix, chooseAnchor(tokenizer, prefix, Math.floor(room * 0.75)));
    if (prefixPart.ids.length > room) prefixPart.ids = prefixPart.ids.slice(prefixPart.ids.length - room);
    const suffixRoom = Math.min(room - prefixPart.ids.length, options.suffixBudget ?? Number.POSITIVE_INFINITY);
    const suffixText = suffixLines(suffix, tokenizer, suffixRoom);
    const before = options.context?.beforeFimPrefix ? contextIds : [];
    const inside = options.context?.beforeFimPrefix ? [] : contextIds;
    const ids = [
      ...before,
      fim.prefix,
      ...inside,
      ...prefixPart.ids,
      fim.suffix,
      ...tokenizer.encode(suffixText),
      fim.middle,
    ];
    return {
      ids,
      anchor: prefixPart.anchor,
      fillInTheMiddle: true,
      contextTokens: contextIds.length,
      built: { prefix, suffix: suffixText, context: options.context?.ids ?? [], ids },
    };
  }
  if (contextIds.length === 0) return { ...prefixPrompt(tokenizer, prefix, budget, options), contextTokens: 0 };
  // With context the prompt is [document start] context prefix: the context is the start of a document.
  const start = options.documentStartId !== undefined ? [options.documentStartId] : [];
  const part = prefixPrompt(tokenizer, prefix, budget - start.length - contextIds.length, {
    ...options,
    documentStartId: undefined,
  });
  return { ...part, ids: [...start, ...contextIds, ...part.ids], contextTokens: contextIds.length };
}

/**
 * The fill-in-the-middle prompt `previous` continued with what the user typed since it was built: the typed text
 * goes after the middle token as the start of the middle, so the whole previous prompt and its KV cache stay
 * valid, where a new prompt would put the suffix after the typed text and run the suffix again on every keystroke.
 * Undefined unless the text before the cursor only grew within its line and the suffix and workspace context
 * (`context`, as given to buildPrompt) are those `previous` was built with.
 */
export function continuePrompt(
  tokenizer: PromptTokenizer,
  previous: Prompt,
  prefix: string,
  suffix: string,
  { budget, context }: { budget: number; context: readonly number[] },
): Prompt | undefined {
  const built = previous.built;
  if (!built || !prefix.startsWith(built.prefix) || !suffix.startsWith(built.suffix)) return undefined;
  if (context.length !== built.context.length || context.some((id, i) => id !== built.context[i])) return undefined;
  const typed = prefix.slice(built.prefix.length);
  if (typed.includes('\n')) return undefined;
  const ids = [...built.ids, ...tokenizer.encode(typed)];
  return ids.length <= budget ? { ...previous, ids } : undefined;
}

/** The prefix from a kept or new anchor within `budget` tokens (a document-start token counts). */
function prefixPrompt(
  tokenizer: PromptTokenizer,
  prefix: string,
  budget: number,
  options: PromptOptions,
): Omit<Prompt, 'contextTokens'> {
  budget = Math.max(1, budget);
  const documentStart = options.documentStartId;
  const fits = (ids: number[]) => ids.length + (documentStart !== undefined ? 1 : 0) <= budget;
  const withStart = (anchor: number, ids: number[]) => ({
    ids: anchor === 0 && documentStart !== undefined ? [documentStart, ...ids] : ids,
    anchor,
    fillInTheMiddle: false,
  });
  const previous = options.anchor;
  if (previous !== undefined && previous <= prefix.length && isLineStart(prefix, previous)) {
    const ids = tokenizer.encode(prefix.slice(previous));
    if (ids.length <= Math.floor(budget * KEEP_SHARE) && fits(ids)) return withStart(previous, ids);
  }
  let anchor = chooseAnchor(tokenizer, prefix, Math.floor(budget * NEW_ANCHOR_SHARE));
  for (;;) {
    const ids = tokenizer.encode(prefix.slice(anchor));
    if (fits(ids)) return withStart(anchor, ids);
    // Per-line counts are estimates; move down a line and try again. A single huge line is cut from the left.
    const next = prefix.indexOf('\n', anchor) + 1;
    if (next <= 0 || next >= prefix.length) {
      const room = budget - (documentStart !== undefined && anchor === 0 ? 1 : 0);
      return withStart(anchor, ids.slice(ids.length - room));
    }
    anchor = next;
  }
}

function isLineStart(text: string, offset: number): boolean {
  return offset === 0 || text[offset - 1] === '\n';
}

/** The latest line start from which the prefix has about `target` tokens (counted line by line). */
function chooseAnchor(tokenizer: PromptTokenizer, prefix: string, target: number): number {
  let anchor = prefix.length;
  let tokens = 0;
  let cursorLine = true;
  while (anchor > 0) {
    const from = isLineStart(prefix, anchor) ? anchor - 2 : anchor - 1;
    const lineStart = from < 0 ? 0 : prefix.lastIndexOf('\n', from) + 1;
    const count = tokenizer.encode(prefix.slice(lineStart, anchor)).length;
    if (!cursorLine && tokens + count > target) break; // the cursor line always belongs to the prompt
    cursorLine = false;
    tokens += count;
    anchor = lineStart;
  }
  return anchor;
}

function promptFrom(tokenizer: PromptTokenizer, prefix: string, anchor: number): { ids: number[]; anchor: number } {
  return { ids: tokenizer.encode(prefix.slice(anchor)), anchor };
}

/** The first lines of the suffix that fit in about `budget` tokens. */
function suffixLines(suffix: string, tokenizer: PromptTokenizer, budget: number): string {
  let end = 0;
  let tokens = 0;
  while (end < suffix.length && budget > 0) {
    const next = suffix.indexOf('\n', end);
    const lineEnd = next < 0 ? suffix.length : next + 1;
    const count = tokenizer.encode(suffix.slice(end, lineEnd)).length;
    if (tokens + count > budget) break;
    tokens += count;
    end = lineEnd;
  }
  return suffix.slice(0, end);
}
