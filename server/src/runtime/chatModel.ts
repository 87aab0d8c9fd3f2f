// Chat models for the explanation role: any transformers.js text-generation model folder with a chat template
// (tokenizer_config.json `chat_template` or chat_template.jinja), loaded offline with @huggingface/transformers, run
// greedily with streaming and cancellation; and the template alone, rendered to a prompt, for the HTTP chat route.
// Kept in runtime/ because only runtime/ talks to transformers.js.
import * as fs from 'node:fs';
import * as path from 'node:path';

type Transformers = typeof import('@huggingface/transformers', { with: { 'resolution-mode': 'import' }});

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatOptions {
  maxTokens: number;
  signal?: AbortSignal;
  /** Called with each piece of text as it is generated. */
  onText?: (text: string) => void;
}

export interface ChatModel {
  readonly modelDir: string;
  chat(messages: ChatMessage[], options: ChatOptions): Promise<string>;
  dispose(): Promise<void>;
}

/**
 * The folder's chat template: tokenizer_config.json's `chat_template` (a string, or a list of named templates of
 * which "default" or the first is taken) or, as newer hub repos ship it, chat_template.jinja.
 */
export function readChatTemplate(modelDir: string): string | undefined {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer_config.json'), 'utf8'));
    const template: unknown = config.chat_template;
    if (typeof template === 'string' && template.length > 0) return template;
    if (Array.isArray(template) && template.length > 0) {
      const named = template as { name?: string; template?: string }[];
      const chosen = named.find((t) => t.name === 'default') ?? named[0];
      if (typeof chosen?.template === 'string' && chosen.template.length > 0) return chosen.template;
    }
  } catch {
    // no or unreadable tokenizer_config.json: try the .jinja file
  }
  try {
    const template = fs.readFileSync(path.join(modelDir, 'chat_template.jinja'), 'utf8');
    return template.length > 0 ? template : undefined;
  } catch {
    return undefined;
  }
}

/** tokenizer_config.json's special tokens as strings (they may be written as {"content": ...} objects). */
export function readSpecialTokens(modelDir: string): Record<string, string | undefined> {
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer_config.json'), 'utf8'));
  } catch {
    // no tokenizer_config.json: no names to report
  }
  const text = (value: unknown): string | undefined => {
    if (typeof value === 'string') return value;
    const content = (value as { content?: unknown } | null)?.content;
    return typeof content === 'string' ? content : undefined;
  };
  return {
    tokenizer_class: text(config.tokenizer_class),
    bos_token: text(config.bos_token),
    eos_token: text(config.eos_token),
    pad_token: text(config.pad_token),
    unk_token: text(config.unk_token),
  };
}

export function hasChatTemplate(modelDir: string): boolean {
  return readChatTemplate(modelDir) !== undefined;
}

/** A folder's chat template, ready to turn messages into the prompt text of the assistant's next turn. */
export interface ChatTemplate {
  /** The prompt for `messages`, ending where the assistant's reply begins; throws the template's own errors. */
  render(messages: readonly ChatMessage[]): string;
  /** Token ids that end an assistant turn: config.json's and generation_config.json's eos_token_id (all of them). */
  readonly endTokenIds: readonly number[];
}

/** The ids in config.json's and generation_config.json's eos_token_id (a number or a list), without repeats. */
export function endOfTurnTokenIds(modelDir: string): number[] {
  const ids = new Set<number>();
  for (const file of ['config.json', 'generation_config.json']) {
    try {
      const value: unknown = JSON.parse(fs.readFileSync(path.join(modelDir, file), 'utf8')).eos_token_id;
      for (const id of Array.isArray(value) ? value : [value]) if (Number.isInteger(id)) ids.add(id as number);
    } catch {
      // missing or unreadable: nothing from this file
    }
  }
  return [...ids];
}

/**
 * Loads the folder's tokenizer with transformers.js to render its chat template (special tokens such as
 * bos_token come from tokenizer_config.json); undefined when the folder has no template.
 */
export async function loadChatTemplate(modelDir: string): Promise<ChatTemplate | undefined> {
  const directory = path.resolve(modelDir);
  const template = readChatTemplate(directory);
  if (!template) return undefined;
  const module = await transformers();
  const tokenizer = await module.AutoTokenizer.from_pretrained(directory, { local_files_only: true });
  return {
    endTokenIds: endOfTurnTokenIds(directory),
    render(messages) {
      const text: unknown = tokenizer.apply_chat_template(messages.map((m) => ({ ...m })) as never, {
        chat_template: template,
        add_generation_prompt: true,
        tokenize: false,
      });
      if (typeof text !== 'string') throw new Error('the chat template did not render to text');
      return text;
    },
  };
}

let transformersModule: Promise<Transformers> | undefined;

function transformers(): Promise<Transformers> {
  transformersModule ??= import('@huggingface/transformers').then((module) => {
    module.env.allowRemoteModels = false;
    module.env.allowLocalModels = true;
    return module;
  });
  return transformersModule;
}

/** The precision of the ONNX file the folder has (transformers.js names files by dtype). */
function dtypeOf(modelDir: string): 'fp32' | 'fp16' | 'q8' | 'q4' {
  const has = (file: string) => fs.existsSync(path.join(modelDir, 'onnx', file));
  if (has('model.onnx') || has('decoder_model_merged.onnx')) return 'fp32';
  if (has('model_quantized.onnx') || has('decoder_model_merged_quantized.onnx')) return 'q8';
  if (has('model_fp16.onnx') || has('decoder_model_merged_fp16.onnx')) return 'fp16';
  if (has('model_q4.onnx') || has('decoder_model_merged_q4.onnx')) return 'q4';
  throw new Error(`${modelDir}: no ONNX model file in onnx/`);
}

export async function loadChatModel(modelDir: string, options: { threads?: number } = {}): Promise<ChatModel> {
  const directory = path.resolve(modelDir);
  const chatTemplate = readChatTemplate(directory);
  if (!chatTemplate) {
    throw new Error(`${modelDir}: no chat template (tokenizer_config.json chat_template or chat_template.jinja)`);
  }
  const module = await transformers();
  const fileName =
    fs.existsSync(path.join(directory, 'onnx', 'decoder_model_merged.onnx')) &&
    !fs.existsSync(path.join(directory, 'onnx', 'model.onnx'))
      ? 'decoder_model_merged'
      : undefined;
  const tokenizer = await module.AutoTokenizer.from_pretrained(directory, { local_files_only: true });
  const model = await module.AutoModelForCausalLM.from_pretrained(directory, {
    local_files_only: true,
    dtype: dtypeOf(directory),
    ...(fileName ? { model_file_name: fileName } : {}),
    session_options: { intraOpNumThreads: options.threads ?? 1, interOpNumThreads: 1 },
  });
  const config = model.config as unknown as Record<string, unknown>;
  const contextLength =
    [config.max_position_embeddings, config.n_positions, config.n_ctx].find(
      (v): v is number => typeof v === 'number',
    ) ?? Infinity;
  let disposed = false;
  return {
    modelDir: directory,
    async chat(messages, chatOptions) {
      if (disposed) throw new Error(`${modelDir}: the model has been disposed`);
      const inputs = tokenizer.apply_chat_template(messages as never, {
        chat_template: chatTemplate,
        add_generation_prompt: true,
        return_dict: true,
      }) as Record<string, unknown>;
      const promptLength = (inputs.input_ids as { dims: number[] }).dims.at(-1) ?? 0;
      const room = contextLength - promptLength;
      if (room <= 0)
        throw new Error(`the prompt has ${promptLength} tokens, more than ${modelDir}'s context of ${contextLength}`);
      let text = '';
      const streamer = new module.TextStreamer(tokenizer, {
        skip_prompt: true,
        skip_special_tokens: true,
        callback_function: (piece: string) => {
          text += piece;
          if (piece) chatOptions.onText?.(piece);
        },
      });
      const interrupt = new module.InterruptableStoppingCriteria();
      const onAbort = () => interrupt.interrupt();
      chatOptions.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        if (chatOptions.signal?.aborted) return '';
        await model.generate({
          ...inputs,
          max_new_tokens: Math.min(chatOptions.maxTokens, room),
          do_sample: false,
          streamer,
          stopping_criteria: [interrupt],
        } as never);
      } finally {
        chatOptions.signal?.removeEventListener('abort', onAbort);
      }
      return text;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await model.dispose();
    },
  };
}
