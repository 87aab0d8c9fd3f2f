// Makes small GPT-2-layout model folders in a temp dir for runtime tests: a byte-level BPE tokenizer trained on
// a built-in code sample (or given texts), tokenizer files, and random weights from initialParameters written
// with writeModelFiles, optionally scaled up so that greedy decoding gives varied tokens.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type GptConfig, initialParameters } from '../../server/src/engine/model';
import { writeModelFiles } from '../../server/src/train/export';
import { trainBpe } from '../../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../../server/src/tokenizer/tokenizerFiles';

export interface ModelFolderOptions {
  /** Architecture; vocabSize is the tokenizer's target size, and the model gets the size actually trained. */
  config?: Partial<GptConfig>;
  seed?: number;
  /** Multiplies every weight matrix (not biases or LayerNorm): > 1 makes random models less uniform. */
  weightScale?: number;
  /** Texts to train the tokenizer on (default: a generated code sample). */
  texts?: string[];
  /** Parent of the temp folder (default: the OS temp dir). */
  parentDir?: string;
}

export interface ModelFolder {
  dir: string;
  config: GptConfig;
  eosTokenId: number;
  remove(): void;
}

export const smallConfig: GptConfig = { vocabSize: 400, contextLength: 64, layers: 2, heads: 2, embedding: 32 };

export async function makeModelFolder(options: ModelFolderOptions = {}): Promise<ModelFolder> {
  const requested: GptConfig = { ...smallConfig, ...options.config };
  const trained = trainBpe(options.texts ?? sampleCode(), { vocabSize: requested.vocabSize, minFrequency: 1 });
  // The model must not produce ids the tokenizer cannot decode, so its vocabulary is what training reached.
  const config: GptConfig = { ...requested, vocabSize: trained.vocab.length };
  const dir = fs.mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'modelwright-model-'));
  const eosTokenId = trained.specialTokens.find((token) => token.content === '<|endoftext|>')?.id ?? 0;
  const weights = initialParameters(config, options.seed ?? 1);
  const scale = options.weightScale ?? 1;
  if (scale !== 1) {
    for (const [name, data] of weights) {
      if (name.includes('.ln_') || name.endsWith('.bias')) continue;
      for (let i = 0; i < data.length; i++) data[i] *= scale;
    }
  }
  writeTokenizerFiles(dir, trained, { modelMaxLength: config.contextLength });
  writeModelFiles(dir, config, weights, eosTokenId);
  return { dir, config, eosTokenId, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A few kilobytes of varied TypeScript-like text, the same on every run. */
export function sampleCode(): string[] {
  const names = ['count', 'total', 'index', 'value', 'result', 'buffer', 'offset', 'length', 'name', 'items'];
  const types = ['number', 'string', 'boolean', 'number[]', 'Map<string, number>'];
  const texts: string[] = [];
  for (let i = 0; i < 40; i++) {
    const a = names[i % names.length];
    const b = names[(i * 7 + 3) % names.length];
    const t = types[i % types.length];
    texts.push(
      `export function ${a}Of${b[0].toUpperCase()}${b.slice(1)}(${a}: ${t}, ${b}: number): ${t} {\n` +
        `  // Returns the ${a} after ${b} steps — café, naïve, 日本語 (${i}).\n` +
        `  for (let i = 0; i < ${b}; i++) {\n    if (i % ${i + 2} === 0) continue;\n    console.log(\`${a} \${i}\`);\n  }\n` +
        `  return ${a};\n}\n`,
    );
  }
  return texts;
}
