// The one protocol file shared by the Modelwright extension (client) and its language server. Standard LSP is
// used wherever it has a method (textDocument/inlineCompletion, hover, codeAction, work-done progress,
// $/cancelRequest, workspace/configuration); the custom messages below, prefixed `modelwright/`, cover the rest.
import {
  NotificationType,
  type PartialResultParams,
  ProgressType,
  RequestType,
  type Range,
  type TextDocumentIdentifier,
  type WorkDoneProgressParams,
} from 'vscode-languageserver-protocol';

export type ModelRole = 'completion' | 'explanation';
export type ModelKind = 'causal-lm' | 'text-classification';

/** One evaluation of a model on a workspace, as recorded in its model card. */
export interface Evaluation {
  at: string;
  workspace: string;
  valLoss: number;
  perplexity: number;
  exactMatch: number;
  editSimilarity: number;
  latencyMs: { p50: number; p95: number };
  samples: number;
  /** Cross-entropy in bits per byte of the held-out text: comparable across tokenizers. */
  bitsPerByte?: number;
  /** How many files the evaluation used, and a digest of their paths and contents. */
  files?: number;
  filesDigest?: string;
}

/** The figures a training run reports as it goes. */
export interface TrainProgress {
  phase: 'preparing' | 'training' | 'saving' | 'done';
  message: string;
  step: number;
  totalSteps: number;
  loss?: number;
  valLoss?: number;
  learningRate?: number;
  tokensPerSecond?: number;
  elapsedSeconds: number;
  etaSeconds?: number;
  /** How far the run is, 0 to 1 (a time-budgeted run counts the clock too). */
  fraction?: number;
  /** False while a time-budgeted run is still planning its number of steps. */
  totalStepsFinal?: boolean;
}

/** A duration as both sides show it (elapsed and ETA of a training): "45s", "3m 05s", "1h 02m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (x: number) => String(x).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
}

/** How a training run ended. */
export interface TrainResult {
  modelDir: string;
  steps: number;
  finished: boolean;
  loss: number;
  /** The held-out loss as `eval` measures it, with the exported model. */
  valLoss: number;
  /** The same measurement in bits per byte of the held-out text. */
  bitsPerByte?: number;
  heldOutFiles?: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export const modelRoles: readonly ModelRole[] = ['completion', 'explanation'];

/** Sent by the client as `initializationOptions` of the initialize request. */
export interface InitializationOptions {
  /** Where trained models are written and listed (one folder per model). */
  modelsDirectory: string;
  /** Read-only models shipped with the extension; `default` serves until another is deployed. */
  bundledModelsDirectory: string;
  /**
   * Workspace trust: untrusted workspaces may complete with bundled models only (no training, deploying or
   * workspace model folders).
   */
  trusted: boolean;
  /**
   * The Hugging Face token for modelwright/pullModel (private and gated repos), from the extension's SecretStorage;
   * absent: none (HF_TOKEN of the server's environment still applies). Later changes come as SetHubToken.
   */
  hubToken?: string;
  /** The API keys of the roles' remote endpoints, from SecretStorage; later changes come as SetRemoteKey. */
  remoteKeys?: Partial<Record<ModelRole, string>>;
  /** Threads per loaded model (the setting `modelwright.inferenceThreads`); absent or 0: by model size. */
  inferenceThreads?: number;
}

/** Model names are folder names, in the models folder, in URLs and in the HTTP service's model list. */
export const modelNameRule = {
  pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/,
  description: '1–100 letters, digits, ".", "_" or "-", starting with a letter or digit, with no ".."',
} as const;

/** True for a name that can be a model folder, a URL segment and a served model's name. */
export function isValidModelName(name: unknown): name is string {
  return typeof name === 'string' && modelNameRule.pattern.test(name) && !name.includes('..');
}

/**
 * Every numeric setting under `modelwright.` with its default and bounds, exactly as package.json declares them
 * (a test checks). Client and server both clamp to these bounds.
 */
export const numericSettings = {
  'completion.maxTokens': { default: 48, minimum: 1, maximum: 512, integer: true },
  'completion.maxLines': { default: 6, minimum: 1, maximum: 100, integer: true },
  'completion.debounceMs': { default: 75, minimum: 0, maximum: 2000, integer: true },
  'completion.confidenceThreshold': { default: 0.2, minimum: 0, maximum: 1, integer: false },
  'completion.contextTokens': { default: 256, minimum: 0, maximum: 8192, integer: true },
  'completion.suffixTokens': { default: 128, minimum: 0, maximum: 8192, integer: true },
  'completion.maxSuggestions': { default: 3, minimum: 1, maximum: 5, integer: true },
  'completion.indexMegabytes': { default: 16, minimum: 1, maximum: 1024, integer: true },
  'explanation.maxTokens': { default: 160, minimum: 1, maximum: 2048, integer: true },
  'training.minutes': { default: 5, minimum: 1, maximum: 1440, integer: false },
  /** Threads per loaded model in the language server; 0 chooses by model size (registry/inferenceThreads.ts). */
  inferenceThreads: { default: 0, minimum: 0, maximum: 64, integer: true },
  /** How much worse than the serving model a deploy may be (rates: 0.02 = two points; losses: bits per byte). */
  'deploy.threshold': { default: 0, minimum: 0, maximum: 1, integer: false },
  /** Per HTTP call to a role's remote endpoint: past it the role falls back to the local model. */
  'remote.completion.timeoutMs': { default: 5000, minimum: 100, maximum: 600000, integer: true },
  'remote.explanation.timeoutMs': { default: 60000, minimum: 100, maximum: 600000, integer: true },
} as const;

/**
 * A role's remote endpoint as the settings `modelwright.remote.<role>.*` give it; `url` '' means the local model
 * serves the role. The API key is not a setting: it stays in the extension's SecretStorage (see SetRemoteKey).
 */
export interface RemoteRoleSettings {
  url: string;
  protocol: 'openai' | 'oip';
  /** The model's name on the server. */
  model: string;
  /** For oip: the local model folder (or a model name of the Models list) with the served model's tokenizer. */
  modelDir: string;
  timeoutMs: number;
}

/** The `modelwright` section of workspace/configuration, fetched per resource. */
export interface Settings {
  models: Record<ModelRole, string>; // model name per role; '' = the active (deployed) model
  completion: {
    enable: boolean;
    disabledLanguages: string[];
    maxTokens: number;
    maxLines: number;
    /** Drop a line that repeats itself (`most, most, most, …`) as soon as it does, and stop decoding there. */
    dropRepetition: boolean;
    /** Guess the next tokens from earlier text of the prompt and check the guesses in the same model run. */
    promptLookup: boolean;
    debounceMs: number;
    /** Mean token probability below which no suggestion is shown (0 = always show). */
    confidenceThreshold: number;
    /** Put workspace context (definitions, recent edits, similar code) in the prompt. */
    workspaceContext: boolean;
    /** Most prompt tokens of workspace context (never more than 40% of the model's prompt room; 0 = none). */
    contextTokens: number;
    /** Most prompt tokens of the text after the cursor, for fill-in-the-middle models. */
    suffixTokens: number;
    /** Suggestions offered when the model is unsure of its first (1 = only ever one). */
    maxSuggestions: number;
    /** Most megabytes of workspace text the completion index holds. */
    indexMegabytes: number;
  };
  explanation: { hover: boolean; maxTokens: number };
  remote: Record<ModelRole, RemoteRoleSettings>;
}

export const defaultSettings: Settings = {
  models: { completion: '', explanation: '' },
  completion: {
    enable: true,
    disabledLanguages: [],
    maxTokens: numericSettings['completion.maxTokens'].default,
    maxLines: numericSettings['completion.maxLines'].default,
    dropRepetition: true,
    promptLookup: true,
    debounceMs: numericSettings['completion.debounceMs'].default,
    confidenceThreshold: numericSettings['completion.confidenceThreshold'].default,
    workspaceContext: true,
    contextTokens: numericSettings['completion.contextTokens'].default,
    suffixTokens: numericSettings['completion.suffixTokens'].default,
    maxSuggestions: numericSettings['completion.maxSuggestions'].default,
    indexMegabytes: numericSettings['completion.indexMegabytes'].default,
  },
  explanation: { hover: false, maxTokens: numericSettings['explanation.maxTokens'].default },
  remote: {
    completion: {
      url: '',
      protocol: 'openai',
      model: '',
      modelDir: '',
      timeoutMs: numericSettings['remote.completion.timeoutMs'].default,
    },
    explanation: {
      url: '',
      protocol: 'openai',
      model: '',
      modelDir: '',
      timeoutMs: numericSettings['remote.explanation.timeoutMs'].default,
    },
  },
};

export type NumericSetting = keyof typeof numericSettings;

/** A setting's value clamped to its bounds (rounded when it is an integer); its default when not a number. */
export function clampSetting(key: NumericSetting, value: unknown): number {
  const { default: fallback, minimum, maximum, integer } = numericSettings[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  const clamped = Math.min(maximum, Math.max(minimum, value));
  return integer ? Math.round(clamped) : clamped;
}

/**
 * The Settings in a `modelwright` section, read through `get(dottedKey)` (VS Code's WorkspaceConfiguration, or a
 * lookup in the object a client sent): wrong types take their default field by field, numbers are clamped.
 */
export function settingsFrom(get: (key: string) => unknown): Settings {
  const d = defaultSettings;
  const bool = (key: string, fallback: boolean) => {
    const v = get(key);
    return typeof v === 'boolean' ? v : fallback;
  };
  const models = {} as Record<ModelRole, string>;
  for (const role of modelRoles) {
    const v = get(`models.${role}`);
    models[role] = typeof v === 'string' ? v.trim() : d.models[role];
  }
  const disabled = get('completion.disabledLanguages');
  const text = (key: string) => {
    const v = get(key);
    return typeof v === 'string' ? v.trim() : '';
  };
  const remote = {} as Record<ModelRole, RemoteRoleSettings>;
  for (const role of modelRoles) {
    remote[role] = {
      url: text(`remote.${role}.url`),
      protocol: get(`remote.${role}.protocol`) === 'oip' ? 'oip' : 'openai',
      model: text(`remote.${role}.model`),
      modelDir: text(`remote.${role}.modelDir`),
      timeoutMs: clampSetting(`remote.${role}.timeoutMs`, get(`remote.${role}.timeoutMs`)),
    };
  }
  return {
    models,
    completion: {
      enable: bool('completion.enable', d.completion.enable),
      disabledLanguages: Array.isArray(disabled)
        ? disabled.filter((x): x is string => typeof x === 'string')
        : [...d.completion.disabledLanguages],
      maxTokens: clampSetting('completion.maxTokens', get('completion.maxTokens')),
      maxLines: clampSetting('completion.maxLines', get('completion.maxLines')),
      dropRepetition: bool('completion.dropRepetition', d.completion.dropRepetition),
      promptLookup: bool('completion.promptLookup', d.completion.promptLookup),
      debounceMs: clampSetting('completion.debounceMs', get('completion.debounceMs')),
      confidenceThreshold: clampSetting('completion.confidenceThreshold', get('completion.confidenceThreshold')),
      workspaceContext: bool('completion.workspaceContext', d.completion.workspaceContext),
      contextTokens: clampSetting('completion.contextTokens', get('completion.contextTokens')),
      suffixTokens: clampSetting('completion.suffixTokens', get('completion.suffixTokens')),
      maxSuggestions: clampSetting('completion.maxSuggestions', get('completion.maxSuggestions')),
      indexMegabytes: clampSetting('completion.indexMegabytes', get('completion.indexMegabytes')),
    },
    explanation: {
      hover: bool('explanation.hover', d.explanation.hover),
      maxTokens: clampSetting('explanation.maxTokens', get('explanation.maxTokens')),
    },
    remote,
  };
}

/** One evaluation of a model (as recorded in its card). */
export type ModelMetrics = Omit<Evaluation, 'workspace'>;

export interface ModelSummary {
  name: string;
  path: string;
  kind: ModelKind;
  bundled: boolean;
  preset?: string;
  parameters?: number;
  sizeBytes: number;
  createdAt?: string;
  parent?: string;
  status: 'active' | 'training' | 'idle';
  roles: ModelRole[];
  /** The latest evaluation, if any. */
  metrics?: ModelMetrics;
  /** config.json's `model_type`: the family (gpt2, llama, qwen2, mistral…). */
  modelType?: string;
  /** The precision of the weights the folder runs: from its `.pull.json`, else the name of its ONNX file. */
  dtype?: ModelDtype;
  /** The longest context in tokens (config.json). */
  contextLength?: number;
  /** Completions prompt it with fill-in-the-middle: its tokenizer has FIM tokens (and it was trained with them). */
  fillInTheMiddle?: boolean;
  /** Its tokenizer has a chat template (tokenizer_config.json or chat_template.jinja): explanations chat with it. */
  chat?: boolean;
  /** The license: from `.pull.json` or the README's front matter (hub models), else the model card. */
  license?: string;
  /** Where a downloaded model came from (its `.pull.json`). */
  origin?: ModelOrigin;
  /** A text classifier's labels and its latest evaluation (validation rows after training). */
  classification?: ClassifierMetrics;
}

/** The precision of a model's weights (fp16 only from folders made elsewhere: pulls offer fp32, q8 and q4). */
export type ModelDtype = 'fp32' | 'fp16' | 'q8' | 'q4';

/** The hub repository, revision and exact commit a downloaded model was pulled from. */
export interface ModelOrigin {
  repo: string;
  revision: string;
  commit: string;
}

/** The figures of a running training, as the trainer reports them, for one named model. */
export type TrainingFigures = Omit<TrainProgress, 'phase'> & {
  name: string;
  phase: TrainProgress['phase'] | 'failed';
  /** At the end of a fine-tuning run: the new model against its base. */
  comparison?: TrainingComparison;
  /** What the steps count: optimizer steps, or a text classifier's epochs. */
  unit?: 'step' | 'epoch';
};

/** client → server: the models the server can serve and which is active per role. */
export namespace ListModels {
  export const method = 'modelwright/listModels' as const;
  export type Params = Record<string, never>;
  export interface Result {
    models: ModelSummary[];
    active: Partial<Record<ModelRole, string>>;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** client → server: a model's card (modelwright.json: data snapshot, hyperparameters, curve, evaluations). */
export namespace GetModelCard {
  export const method = 'modelwright/modelCard' as const;
  export interface Params {
    name: string;
  }
  export type Result = Record<string, unknown>;
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * client → server: train a model on a workspace folder, from scratch (`preset`) or by fine-tuning (`base`),
 * off the request path. Progress arrives as standard work-done progress (cancellable) and, with every step's
 * figures for charts, as TrainingProgress notifications. Resolves when training ends (finished or stopped).
 */
export namespace TrainModel {
  export const method = 'modelwright/train' as const;
  export interface Params extends WorkDoneProgressParams {
    workspaceFolder: string;
    name: string;
    preset?: string;
    base?: string;
    minutes?: number;
    steps?: number;
    resume?: boolean;
    /** Fine-tuning: a LoRA adapter (a Llama-family base's default) or every weight (a GPT-2 base's default). */
    method?: 'lora' | 'full';
    /**
     * After fine-tuning, evaluate the base and the new model on the same held-out files (default true with a
     * base); the figures come back as `comparison`. This many next-line completions each (default 30).
     */
    compare?: boolean;
    compareSamples?: number;
    /** Train a text classifier on a labelled CSV/JSONL file of the folder instead of a language model. */
    classifier?: { data: string; text: string; label: string };
  }
  export type Result = Omit<TrainResult, 'modelDir'> & {
    name: string;
    path: string;
    comparison?: TrainingComparison;
    /** A text classifier's validation metrics (its steps count epochs). */
    classification?: ClassifierMetrics;
  };
  export const type = new RequestType<Params, Result, void>(method);
}

/** One model's held-out figures in a comparison. */
export interface HeldOutFigures {
  name: string;
  valLoss: number;
  bitsPerByte?: number;
  exactMatch: number;
  editSimilarity: number;
}

/** A fine-tuned model against its base, on the same held-out files of the training workspace. */
export interface TrainingComparison {
  base: HeldOutFigures;
  trained: HeldOutFigures;
  files: number;
  filesDescription: string;
  /** Next-line completions per model. */
  samples: number;
}

/**
 * client → server: what one epoch over a workspace costs with a training configuration, before it starts: the
 * training files' tokens (the base's tokenizer; from scratch, the shipped model's as an approximation) and the
 * seconds per optimizer step, `measured` by timing probe steps of that configuration in the worker or
 * `estimated` from the parameter count when a probe step would be too slow.
 */
export namespace EstimateTraining {
  export const method = 'modelwright/estimateTraining' as const;
  export interface Params {
    workspaceFolder: string;
    preset?: string;
    base?: string;
    method?: 'lora' | 'full';
  }
  export interface Result {
    trainFiles: number;
    trainBytes: number;
    trainTokens: number;
    /** Whose tokenizer counted the tokens: the base's, or the shipped model's for a run from scratch. */
    tokenizer: 'base' | 'approximate';
    parameters: number;
    trainedParameters: number;
    batchSize: number;
    contextLength: number;
    secondsPerStep: number;
    source: 'measured' | 'estimated';
    /** A measurement: steps timed, and the sequences per probe step (scaled to batchSize). */
    probeSteps?: number;
    probeBatch?: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** client → server: the columns of a labelled CSV/JSONL file of a workspace folder, from its first rows. */
export namespace PreviewLabelledData {
  export const method = 'modelwright/previewLabelledData' as const;
  export interface Params {
    workspaceFolder: string;
    /** Absolute, or relative to the folder (it must be inside it). */
    file: string;
  }
  export interface Result {
    file: string;
    format: 'csv' | 'jsonl';
    rows: number;
    columns: { name: string; samples: string[]; distinct: number; meanLength: number }[];
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** server → client: figures of a running training (every step, throttled), for the live loss curve. */
export namespace TrainingProgress {
  export const method = 'modelwright/trainingProgress' as const;
  export const type = new NotificationType<TrainingFigures>(method);
}

/** client → server: evaluate a model on a workspace folder (held-out files when it is the training workspace). */
export namespace EvaluateModel {
  export const method = 'modelwright/evaluate' as const;
  export interface Params extends WorkDoneProgressParams {
    name: string;
    workspaceFolder: string;
    samples?: number;
  }
  export type Result = ModelMetrics;
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * client → server: make a model the active one for a role; hot-swapped, the previous model serves until the
 * new one loads.
 */
export namespace DeployModel {
  export const method = 'modelwright/deploy' as const;
  export interface Params {
    name: string;
    role: ModelRole;
  }
  export interface Result {
    active: Partial<Record<ModelRole, string>>;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** client → server: delete a trained model folder (bundled and active models cannot be deleted). */
export namespace DeleteModel {
  export const method = 'modelwright/deleteModel' as const;
  export interface Params {
    name: string;
    /** Delete even though deployment versions name the model (otherwise refused with a message saying which). */
    confirm?: boolean;
  }
  export type Result = Record<string, never>;
  export const type = new RequestType<Params, Result, void>(method);
}

/** How unusual a line is for this codebase: mean surprisal of its tokens under the workspace model. */
export interface LineSurprisal {
  line: number;
  bitsPerToken: number;
  unusual: boolean;
}

/**
 * client → server: explain a range of a document. The explanation streams as partial results (each a chunk to
 * append, when the client sends a partialResultToken); the final result carries the whole text and the per-line
 * surprisal of the range.
 */
export namespace Explain {
  export const method = 'modelwright/explain' as const;
  export interface Params extends WorkDoneProgressParams, PartialResultParams {
    textDocument: TextDocumentIdentifier;
    range: Range;
  }
  export interface Result {
    text: string;
    model: string;
    lines: LineSurprisal[];
  }
  export interface Chunk {
    text: string;
  }
  export const type = new RequestType<Params, Result, void>(method);
  /** The partial results: one Chunk per $/progress notification on the request's partialResultToken. */
  export const chunkType = new ProgressType<Chunk>();
}

/**
 * The command of the "Explain with Modelwright" code action (textDocument/codeAction), run by the client with the
 * document URI and the range to explain; the client answers it by sending modelwright/explain.
 */
export namespace ExplainCommand {
  export const command = 'modelwright.explain' as const;
  export type Arguments = [uri: string, range: Range];
}

export interface ServerStatus {
  health: 'starting' | 'ready' | 'error';
  message?: string;
  active: Partial<Record<ModelRole, string>>;
  lastCompletionMs?: number;
  training?: TrainingFigures;
  /** The roles that have a remote endpoint, and whether it answers. */
  remote?: Partial<Record<ModelRole, RemoteRoleStatus>>;
}

/** A role's remote endpoint as the status reports it. */
export interface RemoteRoleStatus {
  url: string;
  model: string;
  /** unknown: not called yet; down: the role falls back to the local model until a retry succeeds. */
  state: 'unknown' | 'up' | 'down';
  /** Why it is down (refused, timed out, an HTTP status, a setting that is wrong). */
  error?: string;
  /** When it is tried again (ISO time); absent when only a settings change can help. */
  retryAt?: string;
}

/** server → client: health, active models, the last completion's latency and training state, sent on every change. */
export namespace Status {
  export const method = 'modelwright/status' as const;
  export const type = new NotificationType<ServerStatus>(method);
}

/**
 * client → server: serve models over HTTP (the Deploy Model command): OpenAI-compatible /v1, Open Inference
 * Protocol /v2 and /metrics. Binds 127.0.0.1 unless `host` says otherwise; any other address needs `apiKey`
 * (kept by the client in SecretStorage). Resolves once the models are loaded and the port is open. A second
 * start while one runs replaces it.
 */
export namespace StartService {
  export const method = 'modelwright/startService' as const;
  export interface Params {
    /** Model names (folders of the models directory); the first is the default for requests without a model. */
    models: string[];
    host?: string;
    /** 0 or absent: a free port. */
    port?: number;
    apiKey?: string;
  }
  export interface Result {
    /** Base URL, e.g. http://127.0.0.1:43121 */
    url: string;
    models: string[];
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** client → server: stop the HTTP service; requests in flight finish first. Resolves when it has stopped. */
export namespace StopService {
  export const method = 'modelwright/stopService' as const;
  export type Params = Record<string, never>;
  export type Result = Record<string, never>;
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * A remote model server a role can use instead of the local runtime: an OpenAI-compatible `/v1/completions`
 * (vLLM, TGI, Modelwright) or an Open Inference Protocol `/v2/models/{model}/infer` (Triton, KServe, Modelwright;
 * decoded locally with the tokenizer of the local model folder `modelDir`). The API key stays in SecretStorage.
 */
export interface RemoteEndpoint {
  url: string;
  protocol: 'openai' | 'oip';
  model: string;
  modelDir?: string;
}

/** Which of a hub repository's ONNX exports a download takes (without one, its safetensors are converted). */
export type PullDtype = 'fp32' | 'q8' | 'q4';
export const pullDtypes: readonly PullDtype[] = ['fp32', 'q8', 'q4'];

/** A Hugging Face hub model id, as on its model page. */
export const hubRepoRule = {
  pattern: /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/,
  description: 'owner/name as on the model page, e.g. Qwen/Qwen2.5-Coder-0.5B',
} as const;

/** True for an `owner/name` hub id ("--" and ".." are refused: they would make ambiguous folder names). */
export function isHubRepoId(repo: unknown): repo is string {
  return typeof repo === 'string' && hubRepoRule.pattern.test(repo) && !repo.includes('--') && !repo.includes('..');
}

/**
 * The models-directory folder (and model name) of a download: `owner--name`, then `-<revision>` when it is not
 * main (a full commit sha shortened to 12) and `-<dtype>` for a quantized export, e.g. `Qwen--Qwen2.5-Coder-0.5B`
 * or `onnx-community--Qwen2.5-Coder-1.5B-q8`. Undefined when that is no valid model name (too long).
 */
export function pulledModelName(repo: string, revision = 'main', dtype: PullDtype = 'fp32'): string | undefined {
  let name = repo.split('/').join('--');
  const rev = /^[0-9a-f]{40}$/.test(revision) ? revision.slice(0, 12) : revision;
  if (rev && rev !== 'main') name += `-${rev.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/\.{2,}/g, '.')}`;
  if (dtype !== 'fp32') name += `-${dtype}`;
  return isValidModelName(name) ? name : undefined;
}

/** A model worth downloading to start with; sizes are approximate (the hub's files change). */
export interface RecommendedModel {
  repo: string;
  /** The role it is meant for. */
  purpose: ModelRole;
  /** The precision offered first. */
  dtype: PullDtype;
  /** About how many bytes the download of `dtype` is: show it as approximate ("~1 GB"). */
  approximateBytes: number;
  /** One line on what it is good for. */
  note: string;
}

/**
 * The Download Model command's suggestions. Transformers.js ONNX exports (onnx-community) where they exist;
 * the others have safetensors only, which the server converts to ONNX after the download.
 */
export const RECOMMENDED_MODELS: readonly RecommendedModel[] = [
  {
    repo: 'Qwen/Qwen2.5-Coder-0.5B',
    purpose: 'completion',
    dtype: 'fp32',
    approximateBytes: 1.0e9,
    note: 'Code completion with fill-in-the-middle; converted to ONNX after the download (a few GB of memory, once)',
  },
  {
    repo: 'onnx-community/Qwen2.5-Coder-1.5B',
    purpose: 'completion',
    dtype: 'q8',
    approximateBytes: 1.6e9,
    note: 'Better fill-in-the-middle completions than 0.5B, about three times slower',
  },
  {
    repo: 'onnx-community/Qwen2.5-Coder-0.5B-Instruct',
    purpose: 'explanation',
    dtype: 'q8',
    approximateBytes: 0.65e9,
    note: 'Chat model: explanations in prose',
  },
  {
    repo: 'HuggingFaceTB/SmolLM2-135M',
    purpose: 'completion',
    dtype: 'fp32',
    approximateBytes: 0.27e9,
    note: 'For slow machines: small and fast, weaker at code',
  },
  {
    repo: 'HuggingFaceTB/SmolLM2-360M-Instruct',
    purpose: 'explanation',
    dtype: 'q4',
    approximateBytes: 0.42e9,
    note: 'Small chat model for explanations on slow machines',
  },
];

/**
 * client → server: download a model from the Hugging Face hub (HF_ENDPOINT of the server, else huggingface.co)
 * into the models directory, as the folder `pulledModelName(repo, revision, dtype)`. Progress is standard
 * work-done progress (bytes, rate and time left in the message, a percentage), cancellable from the progress UI
 * or with $/cancelRequest; an interrupted download resumes next time. A safetensors-only repository is converted
 * to ONNX. Resolves once the model is listed. Trusted workspaces only. Failures are RequestFailed errors whose
 * `data.hubError` names the cause (AccessDenied: a token is needed or refused; see SetHubToken).
 */
export namespace PullModel {
  export const method = 'modelwright/pullModel' as const;
  export interface Params extends WorkDoneProgressParams {
    /** `owner/name` on the hub. */
    repo: string;
    /** Branch, tag or commit; main by default. */
    revision?: string;
    /** Which ONNX export to take; fp32 by default. */
    dtype?: PullDtype;
    /** A token for this download only, instead of the one the client set. */
    token?: string;
  }
  export interface Result {
    /** The model name (its folder in the models directory). */
    name: string;
    path: string;
    /** True when the download had safetensors only and was converted to ONNX. */
    converted: boolean;
    /** Something the user should know, e.g. that completions cannot run a q4 export. */
    warning?: string;
  }
  /** The `data` of a failed pull's ResponseError. */
  export interface ErrorData {
    hubError: string;
  }
  export const type = new RequestType<Params, Result, ErrorData>(method);
}

/**
 * client → server: the API key of a role's remote endpoint changed (stored in the extension's SecretStorage); sent
 * as `Authorization: Bearer KEY` to that endpoint only, never logged. `key` '' or absent: none.
 */
export namespace SetRemoteKey {
  export const method = 'modelwright/setRemoteKey' as const;
  export interface Params {
    role: ModelRole;
    key?: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** client → server: the Hugging Face token changed (stored in the extension's SecretStorage); '' or absent: none. */
export namespace SetHubToken {
  export const method = 'modelwright/setHubToken' as const;
  export interface Params {
    token?: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** Where a deploy puts a model: the editor's two roles, or the HTTP service (where text classifiers serve). */
export type DeploymentRole = ModelRole | 'service';
export const deploymentRoles: readonly DeploymentRole[] = ['completion', 'explanation', 'service'];

/** One deployed version of a role, as recorded in `<models>/.deployments/<role>.json`. */
export interface DeploymentVersion {
  /** 1, 2, 3… per role; a rollback is a new version that serves an older one's files again. */
  version: number;
  model: string;
  /** sha256 of the model's onnx/model.onnx when it was deployed (the snapshot keeps exactly those bytes). */
  sha256: string;
  /** The gate's figures for the candidate (e.g. macroF1, valLoss, exactMatch). */
  metrics: Record<string, number>;
  at: string;
  /** Why the gate was overridden ("--force", "panel", …); absent when the gate passed. */
  forcedBy?: string;
  /** The version this one restored, for rollbacks. */
  rollbackOf?: number;
}

export interface DeploymentHistory {
  role: DeploymentRole;
  /** The version serving now; undefined before the first deploy. */
  current?: number;
  versions: DeploymentVersion[];
}

/** One metric of the deploy gate, side by side: the candidate against the model serving the role now. */
export interface GateRow {
  metric: string;
  /** higher: larger is better (exact match, macro-F1); lower: smaller is better (validation loss). */
  better: 'higher' | 'lower';
  candidate: number;
  serving?: number;
  /** True when the candidate is not worse than serving by more than the threshold. */
  pass: boolean;
}

export interface GateReport {
  role: DeploymentRole;
  candidate: string;
  /** The model serving the role now; undefined when nothing serves it (the gate then passes). */
  serving?: string;
  threshold: number;
  /** What both were evaluated on (held-out files of a workspace, or the validation rows of a data file). */
  data: string;
  rows: GateRow[];
  pass: boolean;
}

/** client → server: evaluate a candidate against the model serving a role, without deploying (the Deploy table). */
export namespace CheckDeploy {
  export const method = 'modelwright/checkDeploy' as const;
  export interface Params extends WorkDoneProgressParams {
    name: string;
    role: DeploymentRole;
    /** Evaluate on this workspace folder instead of the candidate's held-out data. */
    evalWorkspace?: string;
    /** Tolerated loss of quality (default: the `deploy.threshold` setting, 0). */
    threshold?: number;
  }
  export type Result = GateReport;
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * client → server: an evaluation-gated deploy: refuses (RequestFailed with `data.gate`) unless the candidate is not
 * worse than the serving model by more than the threshold, or `force` says why to deploy anyway (recorded).
 */
export namespace GatedDeploy {
  export const method = 'modelwright/gatedDeploy' as const;
  export interface Params extends CheckDeploy.Params {
    force?: string;
  }
  export interface Result {
    gate: GateReport;
    version: DeploymentVersion;
  }
  export interface ErrorData {
    gate: GateReport;
  }
  export const type = new RequestType<Params, Result, ErrorData>(method);
}

/** client → server: the versions of every role, newest last. */
export namespace ListDeployments {
  export const method = 'modelwright/listDeployments' as const;
  export type Params = Record<string, never>;
  export interface Result {
    histories: DeploymentHistory[];
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** client → server: serve a role's previous version again (its exact files), in one step. */
export namespace RollbackDeployment {
  export const method = 'modelwright/rollback' as const;
  export interface Params {
    role: DeploymentRole;
    /** The version to return to; default the one before the current. */
    version?: number;
  }
  export interface Result {
    version: DeploymentVersion;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** A text classifier's evaluation: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix. */
export interface ClassifierMetrics {
  accuracy: number;
  macroF1: number;
  /** Accuracy of always answering the most frequent class, for comparison. */
  majorityAccuracy: number;
  labels: string[];
  perClass: { label: string; precision: number; recall: number; f1: number; support: number }[];
  /** confusion[true][predicted], in `labels` order. */
  confusion: number[][];
  samples: number;
}

/** client → server: evaluate a text classifier on a CSV/JSONL file's rows (all of them, or the validation split). */
export namespace EvaluateClassifier {
  export const method = 'modelwright/evaluateClassifier' as const;
  export interface Params extends WorkDoneProgressParams {
    name: string;
    data: string;
    text: string;
    label: string;
  }
  export type Result = ClassifierMetrics;
  export const type = new RequestType<Params, Result, void>(method);
}

/** One turn of a conversation with a chat model (the roles of chat templates). */
export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The bounds of modelwright/chat: how many turns and characters a conversation may have. */
export const chatLimits = { maxTurns: 200, maxCharacters: 400_000 } as const;

/**
 * client → server: the next assistant turn of a conversation, from a chat model (a folder with a chat template;
 * the VS Code model picker lists them). `model` absent: the explanation role's model. The reply streams as
 * partial results (one Chunk each, when the client sends a partialResultToken) and the result has the whole text.
 * A model without a chat template is refused with InvalidParams; cancelling ($/cancelRequest or the work-done
 * progress) ends the reply early with RequestCancelled.
 */
export namespace Chat {
  export const method = 'modelwright/chat' as const;
  export interface Params extends WorkDoneProgressParams, PartialResultParams {
    model?: string;
    messages: ChatTurn[];
    /** The most tokens of the reply; default and bounds: the `explanation.maxTokens` setting's. */
    maxTokens?: number;
  }
  export interface Result {
    text: string;
    model: string;
  }
  export interface Chunk {
    text: string;
  }
  export const type = new RequestType<Params, Result, void>(method);
  export const chunkType = new ProgressType<Chunk>();
}

/** How often one model's inline suggestions were taken, as the local acceptance record counts them. */
export interface AcceptanceFigures {
  /** Completion answers with at least one suggestion (the client showed them, or could have). */
  shown: number;
  /** Suggestions taken whole (the item's command ran). */
  accepted: number;
  /** Suggestions of which only a start was taken (word by word, line by line), never fully. */
  partiallyAccepted: number;
  /** accepted / shown, 0 when nothing was shown. */
  acceptanceRate: number;
}

/**
 * The command every inline suggestion carries (its `command`, announced in executeCommandProvider): the client
 * runs it when the user accepts the suggestion whole, and the server records the acceptance. Nothing leaves the
 * machine.
 */
export namespace CompletionAcceptedCommand {
  export const command = 'modelwright.completionAccepted' as const;
  /** The id the server gave the answer, and which of its suggestions was taken (0 = the first). */
  export type Arguments = [answerId: string, suggestion: number];
}

/** server → client: the acceptance record per model name, sent when it changes (throttled), for the panel. */
export namespace AcceptanceRates {
  export const method = 'modelwright/acceptanceRates' as const;
  export interface Params {
    models: Record<string, AcceptanceFigures>;
  }
  export const type = new NotificationType<Params>(method);
}

/** client → server: the acceptance record per model name now (for a panel that opens later). */
export namespace GetAcceptanceRates {
  export const method = 'modelwright/getAcceptanceRates' as const;
  export type Params = Record<string, never>;
  export type Result = AcceptanceRates.Params;
  export const type = new RequestType<Params, Result, void>(method);
}
