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
export type ModelKind = 'causal-lm';

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
  valLoss: number;
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
  'explanation.maxTokens': { default: 160, minimum: 1, maximum: 2048, integer: true },
  'training.minutes': { default: 5, minimum: 1, maximum: 1440, integer: false },
} as const;

/** The `modelwright` section of workspace/configuration, fetched per resource. */
export interface Settings {
  models: Record<ModelRole, string>; // model name per role; '' = the active (deployed) model
  completion: {
    enable: boolean;
    disabledLanguages: string[];
    maxTokens: number;
    maxLines: number;
    debounceMs: number;
    /** Mean token probability below which no suggestion is shown (0 = always show). */
    confidenceThreshold: number;
  };
  explanation: { hover: boolean; maxTokens: number };
}

export const defaultSettings: Settings = {
  models: { completion: '', explanation: '' },
  completion: {
    enable: true,
    disabledLanguages: [],
    maxTokens: numericSettings['completion.maxTokens'].default,
    maxLines: numericSettings['completion.maxLines'].default,
    debounceMs: numericSettings['completion.debounceMs'].default,
    confidenceThreshold: numericSettings['completion.confidenceThreshold'].default,
  },
  explanation: { hover: false, maxTokens: numericSettings['explanation.maxTokens'].default },
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
  return {
    models,
    completion: {
      enable: bool('completion.enable', d.completion.enable),
      disabledLanguages: Array.isArray(disabled)
        ? disabled.filter((x): x is string => typeof x === 'string')
        : [...d.completion.disabledLanguages],
      maxTokens: clampSetting('completion.maxTokens', get('completion.maxTokens')),
      maxLines: clampSetting('completion.maxLines', get('completion.maxLines')),
      debounceMs: clampSetting('completion.debounceMs', get('completion.debounceMs')),
      confidenceThreshold: clampSetting('completion.confidenceThreshold', get('completion.confidenceThreshold')),
    },
    explanation: {
      hover: bool('explanation.hover', d.explanation.hover),
      maxTokens: clampSetting('explanation.maxTokens', get('explanation.maxTokens')),
    },
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
export type TrainingFigures = Omit<TrainProgress, 'phase'> & { name: string; phase: TrainProgress['phase'] | 'failed' };

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
  }
  export type Result = Omit<TrainResult, 'modelDir'> & { name: string; path: string };
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

/** client → server: the Hugging Face token changed (stored in the extension's SecretStorage); '' or absent: none. */
export namespace SetHubToken {
  export const method = 'modelwright/setHubToken' as const;
  export interface Params {
    token?: string;
  }
  export const type = new NotificationType<Params>(method);
}
