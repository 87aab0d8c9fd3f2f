// The graph the runtime decodes with. onnxruntime runs every node of a graph whether its outputs are fetched or
// not, so a graph that outputs both the whole present cache and the new positions' keys and values (the engine's)
// would copy the whole cache every step only to throw it away: the runtime loads such graphs without their
// present.* outputs and the nodes only they need, and with the input num_logits_to_keep, so that a prefill
// computes the LM head for its last position only (the file keeps the Hugging Face layout). Others load as they are.
import * as fs from 'node:fs';
import { onnx } from 'onnx-proto';
import type { IoSpec } from './inferenceProtocol';
import { LOGITS_TO_KEEP, NEW_KEY_VALUES } from './modelIo';

export interface DecodingGraph {
  /** The model without its present outputs. */
  bytes: Uint8Array;
  /** The outputs taken out, as the file declares them. */
  removed: IoSpec[];
  /** Whether initializers live in external data files (resolved against the graph file's folder). */
  externalData: boolean;
}

const present = /^present(_key_values)?\.\d+\./;

/** The graph without its present outputs, or undefined when it lacks new-position outputs for any of them. */
export function decodingGraph(onnxPath: string): DecodingGraph | undefined {
  const model = onnx.ModelProto.decode(fs.readFileSync(onnxPath));
  const graph = model.graph;
  if (!graph) return undefined;
  const outputs = graph.output ?? [];
  const names = new Set(outputs.map((o) => o.name ?? ''));
  const presents = outputs.filter((o) => present.test(o.name ?? ''));
  const covered = (name: string) => names.has(name.replace(present, (m) => `${NEW_KEY_VALUES}.${m.split('.')[1]}.`));
  if (presents.length === 0 || !presents.every((o) => covered(o.name ?? ''))) return undefined;
  // Decoding from new-position outputs feeds buffers with unused columns, which only a mask can hide.
  const inputs = new Set((graph.input ?? []).map((i) => i.name));
  if (!inputs.has('attention_mask') || !inputs.has('position_ids')) return undefined;

  graph.output = outputs.filter((o) => !presents.includes(o));
  // Drop the nodes whose outputs nothing uses any more, until none is left.
  for (;;) {
    const used = new Set<string>(graph.output.map((o) => o.name ?? ''));
    for (const node of graph.node ?? []) for (const input of node.input ?? []) used.add(input);
    const kept = (graph.node ?? []).filter((node) => (node.output ?? []).some((name) => used.has(name)));
    if (kept.length === (graph.node ?? []).length) break;
    graph.node = kept;
  }
  if (!inputs.has(LOGITS_TO_KEEP)) headOverLastPositions(graph);
  const externalData = (graph.initializer ?? []).some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
  return { bytes: onnx.ModelProto.encode(model).finish(), removed: presents.map(describe), externalData };
}

const elementTypes: Partial<Record<number, string>> = {
  [onnx.TensorProto.DataType.FLOAT]: 'float32',
  [onnx.TensorProto.DataType.FLOAT16]: 'float16',
};

function describe(value: onnx.IValueInfoProto): IoSpec {
  const tensor = value.type?.tensorType;
  const shape = (tensor?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? -1)));
  return { name: value.name ?? '', type: elementTypes[tensor?.elemType ?? -1] ?? 'float32', shape };
}

/**
 * Feeds the LM head (the MatMul that makes `logits`) the hidden states of the last num_logits_to_keep positions
 * only (all for 0), as the engine's inference graphs can be built (inferenceGraph.ts); unchanged when the logits
 * come from another op.
 */
function headOverLastPositions(graph: onnx.IGraphProto): void {
  const head = (graph.node ?? []).find((node) => node.output?.includes('logits'));
  if (head?.opType !== 'MatMul' || head.input?.length !== 2) return;
  const [hidden, weight] = head.input;
  const name = (part: string) => `${LOGITS_TO_KEEP}/${part}`;
  const int64s = (part: string, values: number[]): onnx.ITensorProto => ({
    name: name(part),
    dataType: onnx.TensorProto.DataType.INT64,
    dims: [values.length],
    rawData: new Uint8Array(BigInt64Array.from(values, BigInt).buffer),
  });
  graph.initializer = [
    ...(graph.initializer ?? []),
    int64s('axis0', [0]),
    int64s('end', [Number.MAX_SAFE_INTEGER]),
    int64s('axis1', [1]),
  ];
  graph.input = [
    ...(graph.input ?? []),
    { name: LOGITS_TO_KEEP, type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [] } } } },
  ];
  const at = (graph.node ?? []).indexOf(head);
  graph.node!.splice(
    at,
    1,
    { opType: 'Unsqueeze', input: [LOGITS_TO_KEEP, name('axis0')], output: [name('count')] },
    { opType: 'Neg', input: [name('count')], output: [name('start')] },
    { opType: 'Slice', input: [hidden, name('start'), name('end'), name('axis1')], output: [name('hidden')] },
    { opType: 'MatMul', input: [name('hidden'), weight], output: ['logits'] },
  );
  const logits = graph.output?.find((o) => o.name === 'logits')?.type?.tensorType?.shape?.dim?.[1];
  if (logits) logits.dimParam = 'logits_length';
  if (logits) logits.dimValue = null;
}
