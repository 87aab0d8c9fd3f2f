// A text classifier folder loaded for inference: its tokenizer (through runtime/tokenizer, as transformers.js reads
// it), [CLS] and padding ids from tokenizer_config.json, and onnx/model.onnx run in batches; answers labels with
// softmax scores, and the kind test that tells classifier folders from language models.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type EncoderConfig, encoderConfigFrom } from '../engine/encoder';
import { encoderNames } from '../engine/encoderTrainingGraph';
import { type Session, createSession, int64Tensor } from '../runtime/onnxSession';
import { type Tokenizer, loadTokenizer } from '../runtime/tokenizer';
import { type SpecialIds, encodeText, padBatch } from './classifierData';

export interface Prediction {
  label: string;
  score: number;
  /** Softmax probability of every label, in `labels` order. */
  scores: number[];
}

export interface LoadedClassifier {
  readonly dir: string;
  readonly labels: readonly string[];
  readonly config: EncoderConfig;
  classify(texts: readonly string[]): Promise<Prediction[]>;
  dispose(): Promise<void>;
}

/** Rows per onnxruntime run. */
const BATCH = 32;

/** True for a folder holding a sequence classifier (a BERT-style config with labels), not a language model. */
export function isClassifierFolder(dir: string): boolean {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const architectures: unknown[] = Array.isArray(config.architectures) ? config.architectures : [];
    return architectures.some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification'));
  } catch {
    return false;
  }
}

export async function loadClassifier(dir: string, options: { threads?: number } = {}): Promise<LoadedClassifier> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const { config, labels } = encoderConfigFrom(json);
  const tokenizer = await loadTokenizer(dir);
  let session: Session | undefined;
  try {
    const ids = specialIdsOf(dir, tokenizer);
    session = await createSession(path.join(dir, 'onnx', 'model.onnx'), { intraOpThreads: options.threads ?? 1 });
    const live = session;
    return {
      dir,
      labels,
      config,
      async classify(texts) {
        const out: Prediction[] = [];
        for (let start = 0; start < texts.length; start += BATCH) {
          const chunk = texts.slice(start, start + BATCH);
          const batch = padBatch(
            chunk.map((t) => encodeText((s) => tokenizer.encode(s), t, ids, config.maxPositions)),
            ids,
          );
          const dims = [batch.batch, batch.time];
          const result = await live.run({
            [encoderNames.inputIds]: int64Tensor(batch.inputIds, dims),
            [encoderNames.attentionMask]: int64Tensor(batch.attentionMask, dims),
            [encoderNames.tokenTypeIds]: int64Tensor(new BigInt64Array(batch.inputIds.length), dims),
          });
          const logits = result[encoderNames.logits].data as Float32Array;
          for (let b = 0; b < chunk.length; b++) {
            const scores = softmax(logits.subarray(b * labels.length, (b + 1) * labels.length));
            let best = 0;
            for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
            out.push({ label: labels[best], score: scores[best], scores });
          }
        }
        return out;
      },
      async dispose() {
        await live.release();
        tokenizer.dispose();
      },
    };
  } catch (e) {
    await session?.release();
    tokenizer.dispose();
    throw e;
  }
}

/** The [CLS] and padding ids named by tokenizer_config.json (cls_token, pad_token), with BERT's names as fallback. */
export function specialIdsOf(dir: string, tokenizer: Pick<Tokenizer, 'tokenId'>): SpecialIds {
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  } catch {
    // BERT's names below
  }
  const content = (v: unknown) => (typeof v === 'string' ? v : (v as { content?: string } | undefined)?.content);
  const find = (...names: (string | undefined)[]) => {
    for (const name of names) {
      const id = name ? tokenizer.tokenId(name) : undefined;
      if (id !== undefined) return id;
    }
    return undefined;
  };
  const cls = find(content(config.cls_token), '[CLS]', content(config.bos_token));
  const pad = find(content(config.pad_token), '[PAD]', content(config.eos_token));
  if (cls === undefined || pad === undefined)
    throw new Error(
      `${dir}: the tokenizer names no [CLS] or padding token (tokenizer_config.json cls_token, pad_token)`,
    );
  return { cls, pad };
}

function softmax(logits: Float32Array): number[] {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
