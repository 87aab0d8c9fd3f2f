// Log probabilities of a prompt's own tokens (OpenAI's `echo` with `logprobs`, how lm-evaluation-harness scores
// a model): runs the graph over the prompt from an empty cache, in chunks whose logits stay small, each chunk a job
// in the model's queue (so decoding of other requests goes on between chunks), feeding each chunk's keys and
// values to the next.
import type { HostTensor, TensorSpec } from '../runtime/batchedDecoder';
import { halfToFloat } from '../runtime/languageModel';
import { logSumExp, topLogProbabilities } from '../runtime/sampling';
import type { ScoredToken } from './logprobs';
import type { ServedModel } from './modelSet';

/** Most logit values one chunk may produce (positions × vocabulary). */
const LOGITS_PER_CHUNK = 8 * 1024 * 1024;

const presentToPast = (name: string) => name.replace(/^present(_key_values)?\./, 'past_key_values.');

/**
 * One entry per prompt token: its log probability given the tokens before it (null for the first) and the
 * `top` most likely tokens at its position.
 */
export async function scorePrompt(
  model: ServedModel,
  ids: readonly number[],
  top: number,
  signal?: AbortSignal,
): Promise<ScoredToken[]> {
  const { vocabSize } = model.decoder.config;
  const chunk = Math.max(1, Math.floor(LOGITS_PER_CHUNK / vocabSize));
  const scored: ScoredToken[] = ids.length ? [{ id: ids[0], logprob: null, top: null }] : [];
  const pastSpecs = model.decoder.inputs.filter((spec) => spec.name.startsWith('past_key_values.'));
  const presentNames = model.decoder.outputs.map((o) => o.name).filter((name) => /^present(_key_values)?\./.test(name));
  let past: HostTensor[] = pastSpecs.map(emptyPast);
  for (let start = 0; start + 1 < ids.length; start += chunk) {
    // Positions start..end-1 are run; the logits at position p score token p + 1.
    const end = Math.min(ids.length - 1, start + chunk);
    const inputs = chunkInputs(model.decoder.inputs, ids.slice(start, end), start, past);
    const last = end >= ids.length - 1;
    const outputs = await model.scheduler.infer(
      () => model.decoder.runTensors(inputs, last ? ['logits'] : ['logits', ...presentNames]),
      signal,
    );
    const logits = outputs.find((o) => o.name === 'logits')!;
    const values =
      logits.datatype === 'FP16'
        ? halfToFloat(logits.data as Uint16Array, 0, logits.data.length)
        : (logits.data as Float32Array);
    for (let p = 0; p < end - start; p++) {
      const row = values.subarray(p * vocabSize, (p + 1) * vocabSize);
      const lse = logSumExp(row);
      const id = ids[start + p + 1];
      scored.push({ id, logprob: row[id] - lse, top: topLogProbabilities(row, top, lse) });
    }
    if (!last) {
      const byName = new Map(outputs.map((o) => [presentToPast(o.name), o]));
      past = pastSpecs.map((spec) => ({ ...byName.get(spec.name)!, name: spec.name }));
    }
  }
  return scored;
}

/** An empty cache tensor: batch 1, no positions, the declared sizes elsewhere. */
function emptyPast(spec: TensorSpec): HostTensor {
  const shape = spec.shape.map((d, axis) => (axis === 0 ? 1 : Math.max(d, 0)));
  return {
    name: spec.name,
    datatype: spec.datatype,
    shape,
    data: spec.datatype === 'FP16' ? new Uint16Array(0) : new Float32Array(0),
  };
}

function chunkInputs(specs: readonly TensorSpec[], ids: number[], start: number, past: HostTensor[]): HostTensor[] {
  const n = ids.length;
  const int64 = (values: number[]) => BigInt64Array.from(values, (v) => BigInt(v));
  const pastByName = new Map(past.map((t) => [t.name, t]));
  return specs.map((spec): HostTensor => {
    switch (spec.name) {
      case 'input_ids':
        return { name: spec.name, datatype: 'INT64', shape: [1, n], data: int64(ids) };
      case 'attention_mask':
        return {
          name: spec.name,
          datatype: 'INT64',
          shape: [1, start + n],
          data: new BigInt64Array(start + n).fill(1n),
        };
      case 'position_ids':
        return { name: spec.name, datatype: 'INT64', shape: [1, n], data: int64(ids.map((_, i) => start + i)) };
      case 'use_cache_branch':
        return { name: spec.name, datatype: 'BOOL', shape: [1], data: new Uint8Array([start > 0 ? 1 : 0]) };
      default: {
        const tensor = pastByName.get(spec.name);
        if (!tensor) throw new Error(`scoring a prompt: the graph input ${spec.name} is not supported`);
        return tensor;
      }
    }
  });
}
