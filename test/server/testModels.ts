// Model folders for the language-server tests: a "parrot" model whose greedy output is always the same character
// (deterministic suggestions, and as slow per token as its size makes it), and a tiny model fine-tuned for a few
// seconds on this repository's completion code so that it writes code-like text (cached between test files).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type GptConfig, initialParameters, parameterCount } from '../../server/src/engine/model';
import { writeModelCard } from '../../server/src/modelFolder/modelCard';
import { writeModelFiles } from '../../server/src/train/export';
import { toByteLevel } from '../../server/src/tokenizer/byteLevel';
import { trainBpe } from '../../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../../server/src/tokenizer/tokenizerFiles';
import { train } from '../../server/src/train/trainer';
import { makeModelFolder, sampleCode } from '../helpers/makeModelFolder';

const repository = path.resolve(__dirname, '..', '..');

export interface ParrotOptions {
  /** The character every generated token spells. */
  character?: string;
  config?: Partial<GptConfig>;
}

/** Writes a model into `dir` that always predicts the token of `character`, with probability ≈ 1. */
export async function makeParrotModel(dir: string, options: ParrotOptions = {}): Promise<void> {
  const character = options.character ?? 'x';
  const trained = trainBpe(sampleCode(), { vocabSize: 400, minFrequency: 1 });
  const config: GptConfig = {
    vocabSize: trained.vocab.length,
    contextLength: 128,
    layers: 2,
    heads: 2,
    embedding: 32,
    ...options.config,
  };
  config.vocabSize = trained.vocab.length;
  const target = trained.vocab.indexOf(toByteLevel(character));
  if (target < 0) throw new Error(`no token for ${JSON.stringify(character)}`);
  const weights = initialParameters(config, 3);
  const d = config.embedding;
  const embedding = weights.get('transformer.wte.weight')!;
  // logits = ln_f(x)·wteᵀ; with ln_f's weight 0 and its bias the target's embedding, the target's logit wins by far.
  weights.get('transformer.ln_f.weight')!.fill(0);
  const bias = weights.get('transformer.ln_f.bias')!;
  for (let i = 0; i < d; i++) bias[i] = embedding[target * d + i] * 2000;
  fs.mkdirSync(dir, { recursive: true });
  const eos = trained.specialTokens.find((t) => t.content === '<|endoftext|>')?.id ?? 0;
  writeTokenizerFiles(dir, trained, { modelMaxLength: config.contextLength });
  writeModelFiles(dir, config, weights, eos);
  writeModelCard(dir, {
    name: path.basename(dir),
    kind: 'causal-lm',
    createdAt: new Date().toISOString(),
    parameters: parameterCount(config),
    hyperparameters: { ...config },
    curve: [],
    evaluations: [],
    notes: `test model: always predicts ${JSON.stringify(character)}`,
  });
}

/** Source files of this repository that the tiny model learns from (and that tests complete in). */
export const trainingSources = [
  'server/src/completion/completionPipeline.ts',
  'server/src/completion/prompt.ts',
  'server/src/completion/stopRules.ts',
  'server/src/completion/completionCache.ts',
];

/** Makes `dir` a workspace holding copies of trainingSources (flat, by base name); returns it. */
export function writeSourcesWorkspace(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const file of trainingSources) fs.copyFileSync(path.join(repository, file), path.join(dir, path.basename(file)));
  return dir;
}

/**
 * A model folder fine-tuned for ~300 steps (a few seconds) on trainingSources; built once per content and
 * copied into `dir`.
 */
export async function makeTrainedModel(dir: string): Promise<void> {
  const texts = trainingSources.map((f) => fs.readFileSync(path.join(repository, f), 'utf8'));
  const hash = crypto.createHash('sha256').update(texts.join('\u0000')).update('v1').digest('hex').slice(0, 16);
  const cacheRoot = path.join(os.tmpdir(), 'modelwright-test-models');
  const cached = path.join(cacheRoot, `trained-${hash}`);
  if (!fs.existsSync(path.join(cached, 'onnx', 'model.onnx'))) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-train-'));
    try {
      const workspace = path.join(work, 'workspace');
      fs.mkdirSync(workspace);
      texts.forEach((text, i) => fs.writeFileSync(path.join(workspace, path.basename(trainingSources[i])), text));
      const base = await makeModelFolder({
        config: { contextLength: 128, layers: 2, heads: 2, embedding: 64, vocabSize: 600 },
        texts,
        parentDir: work,
      });
      const out = path.join(work, 'trained');
      await train({
        workspace,
        out,
        base: base.dir,
        steps: 300,
        batchSize: 8,
        learningRate: 3e-3,
        threads: 1,
        seed: 1,
      });
      fs.rmSync(path.join(out, 'checkpoint'), { recursive: true, force: true });
      fs.mkdirSync(cacheRoot, { recursive: true });
      try {
        fs.renameSync(out, cached);
      } catch {
        // another test file made it meanwhile
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  fs.cpSync(cached, dir, { recursive: true });
}
