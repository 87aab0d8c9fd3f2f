// Trains a text classifier on a labelled CSV/JSONL file: reads and checks the data, splits it (stratified, by a
// hash of the text), trains or inherits a tokenizer, runs the encoder's training step (softmax cross-entropy, AdamW
// with weight decay, dropout; optional balanced class weights n/(k·n_c) in the loss) with early stopping on
// validation loss, and writes the best weights as a transformers.js text-classification folder — all in a staging
// folder renamed into place at the end, so a failure leaves nothing half-written.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type EncoderConfig,
  defaultEncoderConfig,
  encoderConfigJson,
  encoderParameterCount,
  encoderParameterShapes,
  initialEncoderParameters,
} from '../engine/encoder';
import {
  buildEncoderEvaluation,
  buildEncoderInference,
  buildEncoderTrainingStep,
  encoderNames,
  packEncoder,
  unpackEncoder,
} from '../engine/encoderTrainingGraph';
import { encodeModel } from '../engine/onnx';
import { type AdamWSettings, learningRateAt, stepScalarValues } from '../engine/optimizer';
import { uniform } from '../engine/random';
import { type CurvePoint, type ModelCard, writeModelCard } from '../modelFolder/modelCard';
import { encodeSafetensors } from '../modelFolder/safetensors';
import type { ClassifierMetrics } from '../protocol';
import {
  type Feeds,
  type Session,
  createSession,
  floatTensor,
  int64Tensor,
  scalarTensor,
} from '../runtime/onnxSession';
import { loadTokenizer } from '../runtime/tokenizer';
import { specialTokenContents } from '../tokenizer/specialTokens';
import { tokenizerJson, writeTokenizerFiles } from '../tokenizer/tokenizerFiles';
import { trainBpe } from '../train/bpeTrainer';
import { writeFileAtomic } from '../util/atomicFile';
import { specialIdsOf } from './classifier';
import { DEFAULT_VALIDATION_FRACTION, type SpecialIds, encodeText, padBatch, stratifiedSplit } from './classifierData';
import { classifierMetrics } from './classifierMetrics';
import { type DataReport, readLabelledData } from './labelledData';

export interface TrainClassifierOptions {
  data: string;
  text: string;
  label: string;
  out: string;
  /** A folder whose tokenizer is inherited (tokenizer.json); otherwise a byte-level BPE is trained on the data. */
  base?: string;
  /** Most passes over the training rows (early stopping usually ends sooner). Default 40. */
  epochs?: number;
  /** Stop after this many epochs without a better validation loss. Default 4. */
  patience?: number;
  batchSize?: number;
  learningRate?: number;
  /** AdamW's decoupled weight decay (L2 regularisation of the matrices). Default 0.01. */
  weightDecay?: number;
  dropout?: number;
  /** 'balanced': the loss weighs each class by n/(k·n_c), so that every class counts as much in total. */
  classWeights?: 'none' | 'balanced';
  vocabSize?: number;
  maxLength?: number;
  validationFraction?: number;
  minutes?: number;
  seed?: number;
  threads?: number;
  maxBytes?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ClassifierProgress) => void;
}

export interface ClassifierProgress {
  phase: 'preparing' | 'training' | 'saving' | 'done';
  message: string;
  epoch?: number;
  loss?: number;
  valLoss?: number;
  valMacroF1?: number;
}

export interface TrainClassifierResult {
  modelDir: string;
  data: DataReport;
  trainRows: number;
  validationRows: number;
  epochs: number;
  bestEpoch: number;
  valLoss: number;
  metrics: ClassifierMetrics;
  elapsedSeconds: number;
}

const EVAL_CHUNK = 128;

export async function trainClassifier(options: TrainClassifierOptions): Promise<TrainClassifierResult> {
  const started = performance.now();
  const report = options.onProgress ?? (() => {});
  const out = path.resolve(options.out);
  if (fs.existsSync(out)) throw new Error(`${out} exists; choose another output folder`);

  report({ phase: 'preparing', message: `reading ${options.data}` });
  const data = await readLabelledData(options.data, options);
  const labels = data.classes.map((c) => c.label).sort();
  const split = stratifiedSplit(data.rows, options.validationFraction ?? DEFAULT_VALIDATION_FRACTION);
  if (split.validation.length === 0) throw new Error(`${options.data}: too few rows to hold any out for validation`);
  report({
    phase: 'preparing',
    message:
      `${data.rows.length} rows (${data.emptyRows.length} empty, ${data.duplicateRows.length} duplicate skipped); ` +
      `classes ${data.classes.map((c) => `${c.label} ${c.count}`).join(', ')}; ` +
      `${split.train.length} train / ${split.validation.length} validation`,
  });

  const staging = `${out}.partial-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    const maxLength = options.maxLength ?? defaultEncoderConfig.maxPositions;
    writeClassifierTokenizer(
      staging,
      options,
      split.train.map((r) => r.text),
      maxLength,
    );
    const tokenizer = await loadTokenizer(staging);
    const ids = specialIdsOf(staging, tokenizer);
    const encode = (text: string) => encodeText((s) => tokenizer.encode(s), text, ids, maxLength);
    const labelIndex = new Map(labels.map((l, i) => [l, i]));
    const trainSet = split.train.map((r) => ({ ids: encode(r.text), label: labelIndex.get(r.label)! }));
    const validationSet = split.validation.map((r) => ({ ids: encode(r.text), label: labelIndex.get(r.label)! }));
    const time = Math.min(
      maxLength,
      Math.max(2, ...trainSet.map((r) => r.ids.length), ...validationSet.map((r) => r.ids.length)),
    );
    const dropout = options.dropout ?? defaultEncoderConfig.hiddenDropout;
    const config: EncoderConfig = {
      ...defaultEncoderConfig,
      vocabSize: tokenizer.vocabSize,
      labels: labels.length,
      maxPositions: maxLength,
      hiddenDropout: dropout,
      attentionDropout: dropout,
    };
    tokenizer.dispose();

    const seed = options.seed ?? 1;
    const batchSize = Math.min(options.batchSize ?? 16, trainSet.length);
    const adamw: AdamWSettings = {
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
      weightDecay: options.weightDecay ?? 0.01,
      maxGradNorm: 1,
    };
    const threads = options.threads ?? 1;
    const classWeights =
      options.classWeights === 'balanced'
        ? balancedClassWeights(
            trainSet.map((r) => r.label),
            labels.length,
          )
        : undefined;
    const trainSession = await createSession(
      encodeModel(buildEncoderTrainingStep(config, batchSize, time, adamw, seed, classWeights)),
      {
        intraOpThreads: threads,
      },
    );
    const evalSessions = new Map<number, Session>();
    const evalSession = async (batch: number) => {
      let s = evalSessions.get(batch);
      if (!s) {
        s = await createSession(encodeModel(buildEncoderEvaluation(config, batch, time, classWeights)), {
          intraOpThreads: threads,
        });
        evalSessions.set(batch, s);
      }
      return s;
    };

    try {
      let parameters: Float32Array = packEncoder(config, initialEncoderParameters(config, seed));
      let moments: Float32Array = new Float32Array(parameters.length);
      let variances: Float32Array = new Float32Array(parameters.length);
      const stepsPerEpoch = Math.max(1, Math.floor(trainSet.length / batchSize));
      const maxEpochs = options.epochs ?? 40;
      const patience = options.patience ?? 4;
      const schedule = {
        learningRate: options.learningRate ?? 2e-3,
        warmupSteps: Math.min(50, stepsPerEpoch),
        totalSteps: stepsPerEpoch * maxEpochs,
        minLearningRateRatio: 0.1,
      };
      const random = uniform(seed);
      const draw = batchSampler(trainSet.length, random);
      const deadline = options.minutes ? started + options.minutes * 60_000 : Number.POSITIVE_INFINITY;
      const curve: CurvePoint[] = [];
      let best = { valLoss: Number.POSITIVE_INFINITY, epoch: 0, parameters, predicted: [] as number[] };
      let step = 0;
      let epoch = 0;
      while (epoch < maxEpochs && epoch - best.epoch < patience && performance.now() < deadline) {
        if (options.signal?.aborted) break;
        epoch++;
        let lossSum = 0;
        for (const rows of draw(stepsPerEpoch, batchSize)) {
          step++;
          const batch = padBatch(
            rows.map((i) => trainSet[i].ids),
            ids,
            time,
          );
          const dims = [batch.batch, batch.time];
          const scalars = stepScalarValues(adamw, step, learningRateAt(schedule, step - 1));
          const feeds: Feeds = {
            [encoderNames.inputIds]: int64Tensor(batch.inputIds, dims),
            [encoderNames.attentionMask]: int64Tensor(batch.attentionMask, dims),
            [encoderNames.labels]: int64Tensor(BigInt64Array.from(rows.map((i) => BigInt(trainSet[i].label))), [
              rows.length,
            ]),
            [encoderNames.parameters]: floatTensor(parameters, [parameters.length]),
            [encoderNames.moments]: floatTensor(moments, [parameters.length]),
            [encoderNames.variances]: floatTensor(variances, [parameters.length]),
            [encoderNames.learningRate]: scalarTensor(scalars.learningRate),
            [encoderNames.momentScale]: scalarTensor(scalars.momentScale),
            [encoderNames.varianceScale]: scalarTensor(scalars.varianceScale),
          };
          const result = await trainSession.run(feeds);
          parameters = result[encoderNames.next(encoderNames.parameters)].data as Float32Array;
          moments = result[encoderNames.next(encoderNames.moments)].data as Float32Array;
          variances = result[encoderNames.next(encoderNames.variances)].data as Float32Array;
          lossSum += (result[encoderNames.loss].data as Float32Array)[0];
        }
        const validation = await validate(validationSet, parameters, ids, time, evalSession);
        const metrics = classifierMetrics(
          labels,
          validationSet.map((r) => labels[r.label]),
          validation.predicted.map((p) => labels[p]),
        );
        const loss = lossSum / stepsPerEpoch;
        curve.push({ step, loss, valLoss: validation.loss, elapsedSeconds: (performance.now() - started) / 1000 });
        if (validation.loss < best.valLoss)
          best = { valLoss: validation.loss, epoch, parameters, predicted: validation.predicted };
        report({
          phase: 'training',
          message: `epoch ${epoch}: loss ${loss.toFixed(4)}, validation loss ${validation.loss.toFixed(4)}, macro-F1 ${metrics.macroF1.toFixed(3)}`,
          epoch,
          loss,
          valLoss: validation.loss,
          valMacroF1: metrics.macroF1,
        });
      }
      if (epoch === 0) throw new Error('training stopped before the first epoch');

      report({ phase: 'saving', message: `saving the weights of epoch ${best.epoch}` });
      const weights = unpackEncoder(config, best.parameters);
      const metrics = classifierMetrics(
        labels,
        validationSet.map((r) => labels[r.label]),
        best.predicted.map((p) => labels[p]),
      );
      writeFileAtomic(
        path.join(staging, 'config.json'),
        JSON.stringify(encoderConfigJson(config, labels, ids.pad), null, 2) + '\n',
      );
      writeFileAtomic(path.join(staging, 'onnx', 'model.onnx'), encodeModel(buildEncoderInference(config, weights)));
      const shapes = new Map(encoderParameterShapes(config));
      const tensors = new Map([...weights].map(([name, data]) => [name, { shape: shapes.get(name)!, data }]));
      writeFileAtomic(path.join(staging, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
      const elapsedSeconds = (performance.now() - started) / 1000;
      const card: ModelCard & { classification: object } = {
        name: path.basename(out),
        kind: 'text-classification',
        createdAt: new Date().toISOString(),
        ...(options.base ? { parent: path.resolve(options.base) } : {}),
        parameters: encoderParameterCount(config),
        hyperparameters: {
          dataFile: path.resolve(options.data),
          textColumn: options.text,
          labelColumn: options.label,
          validationFraction: options.validationFraction ?? DEFAULT_VALIDATION_FRACTION,
          batchSize,
          learningRate: schedule.learningRate,
          weightDecay: adamw.weightDecay,
          dropout,
          classWeights: options.classWeights ?? 'none',
          maxLength,
          epochs: epoch,
          bestEpoch: best.epoch,
          seed,
        },
        data: {
          workspace: path.dirname(path.resolve(options.data)),
          files: [
            {
              path: path.basename(options.data),
              sha256: crypto.createHash('sha256').update(fs.readFileSync(options.data)).digest('hex'),
              bytes: fs.statSync(options.data).size,
              split: 'train',
            },
          ],
          excluded: [
            ...data.emptyRows.map((row) => ({
              path: `${path.basename(options.data)}:${row}`,
              reason: 'empty text or label',
            })),
            ...data.duplicateRows.map((row) => ({
              path: `${path.basename(options.data)}:${row}`,
              reason: 'duplicate text',
            })),
          ],
          trainTokens: trainSet.reduce((n, r) => n + r.ids.length, 0),
          validationTokens: validationSet.reduce((n, r) => n + r.ids.length, 0),
        },
        curve,
        evaluations: [],
        training: { steps: step, elapsedSeconds, finished: true, tokensPerSecond: 0 },
        classification: {
          labels,
          classes: data.classes,
          trainRows: split.train.length,
          validationRows: split.validation.length,
          validation: { at: new Date().toISOString(), ...metrics },
        },
      };
      writeModelCard(staging, card);
      fs.renameSync(staging, out);
      report({
        phase: 'done',
        message: `macro-F1 ${metrics.macroF1.toFixed(3)} on ${split.validation.length} validation rows`,
      });
      return {
        modelDir: out,
        data,
        trainRows: split.train.length,
        validationRows: split.validation.length,
        epochs: epoch,
        bestEpoch: best.epoch,
        valLoss: best.valLoss,
        metrics,
        elapsedSeconds,
      };
    } finally {
      await trainSession.release();
      for (const s of evalSessions.values()) await s.release();
    }
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}

/** Validation loss (mean over rows) and the predicted label of every row, without dropout. */
async function validate(
  rows: { ids: number[]; label: number }[],
  parameters: Float32Array,
  ids: SpecialIds,
  time: number,
  sessionFor: (batch: number) => Promise<Session>,
): Promise<{ loss: number; predicted: number[] }> {
  let lossSum = 0;
  const predicted: number[] = [];
  for (let start = 0; start < rows.length; start += EVAL_CHUNK) {
    const chunk = rows.slice(start, start + EVAL_CHUNK);
    const batch = padBatch(
      chunk.map((r) => r.ids),
      ids,
      time,
    );
    const dims = [batch.batch, batch.time];
    const session = await sessionFor(chunk.length);
    const result = await session.run({
      [encoderNames.inputIds]: int64Tensor(batch.inputIds, dims),
      [encoderNames.attentionMask]: int64Tensor(batch.attentionMask, dims),
      [encoderNames.labels]: int64Tensor(BigInt64Array.from(chunk.map((r) => BigInt(r.label))), [chunk.length]),
      [encoderNames.parameters]: floatTensor(parameters, [parameters.length]),
    });
    lossSum += (result[encoderNames.loss].data as Float32Array)[0] * chunk.length;
    const logits = result[encoderNames.logits].data as Float32Array;
    const width = logits.length / chunk.length;
    for (let b = 0; b < chunk.length; b++) {
      let best = 0;
      for (let k = 1; k < width; k++) if (logits[b * width + k] > logits[b * width + best]) best = k;
      predicted.push(best);
    }
  }
  return { loss: lossSum / rows.length, predicted };
}

/** Batches of row indices: a fresh permutation per epoch. */
function batchSampler(rows: number, random: () => number): (steps: number, size: number) => number[][] {
  return (steps, size) => {
    const order = Array.from({ length: rows }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    return Array.from({ length: steps }, (_, s) => order.slice(s * size, (s + 1) * size));
  };
}

/** scikit-learn's 'balanced' weights n/(k·n_c) over the k classes present (0 for a class with no rows). */
export function balancedClassWeights(labelOf: number[], classes: number): Float32Array {
  const counts = new Float32Array(classes);
  for (const label of labelOf) counts[label]++;
  const present = counts.filter((n) => n > 0).length;
  return counts.map((n) => (n > 0 ? labelOf.length / (present * n) : 0));
}

/**
 * The tokenizer files of the classifier: a byte-level BPE trained on the training texts (special tokens first,
 * `<|endoftext|>` doubling as [CLS]), or the base folder's tokenizer. tokenizer.json's post-processor puts [CLS]
 * in front, so transformers.js's text-classification pipeline encodes exactly as we do.
 */
function writeClassifierTokenizer(
  dir: string,
  options: TrainClassifierOptions,
  texts: string[],
  maxLength: number,
): void {
  if (options.base) {
    for (const file of [
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'vocab.json',
      'merges.txt',
    ]) {
      const source = path.join(options.base, file);
      if (fs.existsSync(source)) fs.copyFileSync(source, path.join(dir, file));
    }
    if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) throw new Error(`${options.base} has no tokenizer.json`);
    return;
  }
  const trained = trainBpe(texts, { vocabSize: options.vocabSize ?? 1000, minFrequency: 2 });
  writeTokenizerFiles(dir, trained, { modelMaxLength: maxLength });
  const cls = specialTokenContents.endOfText;
  const clsId = trained.specialTokens.find((t) => t.content === cls)?.id ?? 0;
  const json = tokenizerJson(trained) as Record<string, unknown>;
  json.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: cls, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: cls, type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { [cls]: { id: cls, ids: [clsId], tokens: [cls] } },
  };
  json.truncation = null;
  writeFileAtomic(path.join(dir, 'tokenizer.json'), JSON.stringify(json, null, 1) + '\n');
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  config.cls_token = cls;
  config.model_input_names = ['input_ids', 'attention_mask', 'token_type_ids'];
  writeFileAtomic(configFile, JSON.stringify(config, null, 2) + '\n');
}
