// The model folders that can be served: the user's models directory (trusted workspaces only) and the bundled one,
// scanned into entries by name (user models shadow bundled ones), resolved by name or absolute path, and summed up
// with their model cards for the client's model list.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isClassifierFolder } from '../classify/classifier';
import {
  type ClassifierMetrics,
  type ModelDtype,
  type ModelOrigin,
  type ModelRole,
  type ModelSummary,
  isValidModelName,
  modelNameRule,
} from '../protocol';
import { type ModelCard, readModelCard, trainedWithFillInTheMiddle } from '../modelFolder/modelCard';
import { fimFormats } from '../tokenizer/fimFormats';
import { isIncomplete } from '../train/finalExport';
import { RegistryError } from './registryError';

export interface ModelEntry {
  name: string;
  dir: string;
  bundled: boolean;
}

export interface CatalogOptions {
  modelsDirectory: string;
  bundledModelsDirectory: string;
  /** Untrusted workspaces see bundled models only. */
  trusted: boolean;
}

export class ModelCatalog {
  /** What each folder's files say (family, dtype, FIM…), kept until one of those files changes. */
  private readonly facts = new Map<string, { signature: string; facts: FolderFacts }>();

  constructor(private readonly options: CatalogOptions) {}

  /** Every model folder that can be served (user models shadow bundled ones of the same name). */
  entries(): ModelEntry[] {
    const found = new Map<string, ModelEntry>();
    const scan = (directory: string, bundled: boolean) => {
      let names: fs.Dirent[];
      try {
        names = fs.readdirSync(directory, { withFileTypes: true });
      } catch {
        return;
      }
      for (const d of names) {
        if (!(d.isDirectory() || d.isSymbolicLink()) || !isValidModelName(d.name) || found.has(d.name)) continue;
        const dir = path.join(directory, d.name);
        // A training run that has not finished (or failed) leaves its `.incomplete` marker: not a model yet.
        if (fs.existsSync(path.join(dir, 'config.json')) && !isIncomplete(dir))
          found.set(d.name, { name: d.name, dir, bundled });
      }
    };
    if (this.options.trusted) scan(this.options.modelsDirectory, false);
    scan(this.options.bundledModelsDirectory, true);
    return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  find(name: string): ModelEntry | undefined {
    return this.entries().find((e) => e.name === name);
  }

  /** The entry of a model name, or of an absolute model folder path (trusted workspaces only); throws RegistryError. */
  resolve(name: string): ModelEntry {
    if (typeof name === 'string' && path.isAbsolute(name)) {
      // A model folder anywhere on disk (e.g. a transformers.js chat model), by absolute path: trusted workspaces only.
      if (!this.options.trusted)
        throw new RegistryError(
          'untrusted workspace: model folders outside the bundled models cannot be used',
          'forbidden',
        );
      if (!fs.existsSync(path.join(name, 'config.json')))
        throw new RegistryError(`${name} is not a model folder: config.json is missing`, 'unknownModel');
      return { name, dir: name, bundled: false };
    }
    if (!isValidModelName(name)) {
      throw new RegistryError(
        `"${String(name)}" is not a valid model name (${modelNameRule.description})`,
        'invalidName',
      );
    }
    const entry = this.find(name);
    if (entry) return entry;
    const known = this.entries().map((e) => e.name);
    throw new RegistryError(
      `unknown model "${name}"; known models: ${known.length ? known.join(', ') : 'none'}`,
      'unknownModel',
    );
  }

  /** One summary per entry for the client, with the roles `rolesOf` gives and `training` marked as training. */
  summaries(rolesOf: (name: string) => ModelRole[], training?: string): ModelSummary[] {
    return this.entries().map((entry) => {
      let card: ModelCard | undefined;
      try {
        card = readModelCard(entry.dir);
      } catch {
        card = undefined;
      }
      const roles = rolesOf(entry.name);
      const evaluation = card?.evaluations?.at(-1);
      const summary: ModelSummary = {
        name: entry.name,
        path: entry.dir,
        kind: isClassifierFolder(entry.dir) ? 'text-classification' : 'causal-lm',
        bundled: entry.bundled,
        sizeBytes: folderSize(entry.dir),
        status: entry.name === training ? 'training' : roles.length ? 'active' : 'idle',
        roles,
      };
      if (card?.preset) summary.preset = card.preset;
      if (card?.parameters) summary.parameters = card.parameters;
      if (card?.createdAt) summary.createdAt = card.createdAt;
      if (card?.parent) summary.parent = card.parent;
      Object.assign(summary, this.factsOf(entry.dir, card));
      const classification = (card as { classification?: { validation?: ClassifierMetrics } } | undefined)
        ?.classification?.validation;
      if (classification) summary.classification = classification;
      if (evaluation) {
        summary.metrics = {
          valLoss: evaluation.valLoss,
          perplexity: evaluation.perplexity,
          exactMatch: evaluation.exactMatch,
          editSimilarity: evaluation.editSimilarity,
          latencyMs: evaluation.latencyMs,
          samples: evaluation.samples,
          at: evaluation.at,
        };
      }
      return summary;
    });
  }

  private factsOf(dir: string, card: ModelCard | undefined): FolderFacts {
    const signature = factsSignature(dir);
    const known = this.facts.get(dir);
    if (known?.signature === signature) return known.facts;
    const facts = readFolderFacts(dir, card);
    this.facts.set(dir, { signature, facts });
    return facts;
  }
}

/** The summary fields read from a folder's files rather than from its model card. */
type FolderFacts = Pick<
  ModelSummary,
  'modelType' | 'dtype' | 'contextLength' | 'fillInTheMiddle' | 'chat' | 'license' | 'origin'
>;

/** The files FolderFacts are read from (their sizes and times are the cache key, with the onnx/ listing). */
const FACT_FILES = [
  'config.json',
  'tokenizer.json',
  'vocab.json',
  'added_tokens.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'README.md',
  '.pull.json',
  'modelwright.json',
];

function factsSignature(dir: string): string {
  const parts = FACT_FILES.map((f) => {
    try {
      const stat = fs.statSync(path.join(dir, f));
      return `${stat.size}:${stat.mtimeMs}`;
    } catch {
      return '-';
    }
  });
  try {
    parts.push(fs.readdirSync(path.join(dir, 'onnx')).sort().join(','));
  } catch {
    parts.push('-');
  }
  return parts.join('|');
}

function readFolderFacts(dir: string, card: ModelCard | undefined): FolderFacts {
  const facts: FolderFacts = {};
  const config = readJsonObject(path.join(dir, 'config.json'));
  if (typeof config?.model_type === 'string') facts.modelType = config.model_type;
  const context = [config?.n_positions, config?.max_position_embeddings, config?.n_ctx].find(
    (v): v is number => typeof v === 'number' && v > 0,
  );
  if (context) facts.contextLength = context;
  const pull = readPullRecord(dir);
  const dtype = pull?.weights === 'onnx' && isDtype(pull.dtype) ? pull.dtype : onnxDtype(dir);
  if (dtype) facts.dtype = dtype;
  facts.fillInTheMiddle = hasFimTokens(dir) && trainedWithFillInTheMiddle(card);
  facts.chat = hasChatTemplate(dir);
  const license = pull?.license ?? readmeLicense(dir) ?? card?.license;
  if (license) facts.license = license;
  if (pull) facts.origin = { repo: pull.repo, revision: pull.revision, commit: pull.commit };
  return facts;
}

function readJsonObject(file: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The `.pull.json` a download writes last (hub/pullManifest.ts): where the folder came from. */
function readPullRecord(
  dir: string,
): (ModelOrigin & { dtype?: unknown; weights?: unknown; license?: string }) | undefined {
  const manifest = readJsonObject(path.join(dir, '.pull.json'));
  if (!manifest) return undefined;
  const { repo, revision, commit, dtype, weights, license } = manifest;
  if (typeof repo !== 'string' || typeof revision !== 'string' || typeof commit !== 'string') return undefined;
  return { repo, revision, commit, dtype, weights, ...(typeof license === 'string' && license ? { license } : {}) };
}

const isDtype = (value: unknown): value is ModelDtype => ['fp32', 'fp16', 'q8', 'q4'].includes(value as string);

/** ONNX files by the dtype their transformers.js names mean, in the order the runtimes prefer them. */
const ONNX_DTYPES: [string, ModelDtype][] = [
  ['model.onnx', 'fp32'],
  ['decoder_model_merged.onnx', 'fp32'],
  ['model_quantized.onnx', 'q8'],
  ['decoder_model_merged_quantized.onnx', 'q8'],
  ['model_int8.onnx', 'q8'],
  ['model_fp16.onnx', 'fp16'],
  ['decoder_model_merged_fp16.onnx', 'fp16'],
  ['model_q4.onnx', 'q4'],
  ['decoder_model_merged_q4.onnx', 'q4'],
];

function onnxDtype(dir: string): ModelDtype | undefined {
  return ONNX_DTYPES.find(([file]) => fs.existsSync(path.join(dir, 'onnx', file)))?.[1];
}

/** True when the tokenizer's vocabulary has the three tokens of one fill-in-the-middle format. */
function hasFimTokens(dir: string): boolean {
  const texts: string[] = [];
  for (const file of ['tokenizer.json', 'vocab.json', 'added_tokens.json']) {
    try {
      texts.push(fs.readFileSync(path.join(dir, file), 'utf8'));
    } catch {
      // not every tokenizer has every file
    }
  }
  // A token appears as a JSON string (a vocabulary key or an added token's content), raw or \u-escaped.
  const escaped = (token: string) =>
    JSON.stringify(token).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const present = (token: string) => texts.some((t) => t.includes(JSON.stringify(token)) || t.includes(escaped(token)));
  return fimFormats.some((f) => present(f.prefix) && present(f.suffix) && present(f.middle));
}

function hasChatTemplate(dir: string): boolean {
  const template = readJsonObject(path.join(dir, 'tokenizer_config.json'))?.chat_template;
  if ((typeof template === 'string' || Array.isArray(template)) && template.length > 0) return true;
  try {
    return fs.readFileSync(path.join(dir, 'chat_template.jinja'), 'utf8').trim().length > 0;
  } catch {
    return false;
  }
}

/** `license:` in the YAML front matter of a hub model card (README.md); `license_name` when it is "other". */
function readmeLicense(dir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
  } catch {
    return undefined;
  }
  const front = /^\uFEFF?---\r?\n([\s\S]*?)\r?\n---\s*(\r?\n|$)/.exec(text)?.[1];
  if (!front) return undefined;
  const field = (key: string) => {
    const match = new RegExp(`^${key}:[ \\t]*(.*)$`, 'm').exec(front);
    if (!match) return undefined;
    let value = match[1].trim();
    if (!value) value = /^\r?\n[ \t]*-[ \t]*(.+)/.exec(front.slice(match.index + match[0].length))?.[1]?.trim() ?? '';
    value = value.replace(/^["']|["']$/g, '').trim();
    return value || undefined;
  };
  const license = field('license');
  return license === 'other' ? (field('license_name') ?? license) : license;
}

function folderSize(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) total += folderSize(full);
    else if (e.isFile()) total += fs.statSync(full).size;
  }
  return total;
}
