// The inference worker thread: owns the onnxruntime sessions used for completion, explanation, serving and
// evaluation, and the keys and values of their caches, so that a long run never blocks the main thread's event
// loop. Requests come from inferenceClient.ts (messages in inferenceProtocol.ts).
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { type BatchState, BatchedCore } from './batchedCore';
import type { InferenceEnvelope, InferenceReply, InferenceRequest, IoSpec, LoadedModel } from './inferenceProtocol';
import { type DecodingGraph, decodingGraph } from './decodingGraph';
import { discoverIo } from './modelIo';
import { type Session, createSession } from './onnxSession';
import { type CacheState, SequenceModel } from './sequenceCore';

const models = new Map<number, SequenceModel | BatchedCore>();
/** Caches and batches, with the model each belongs to. */
const states = new Map<number, { model: number; state: CacheState | BatchState }>();

function modelOf<T extends SequenceModel | BatchedCore>(handle: number, kind: new (...args: never[]) => T): T {
  const model = models.get(handle);
  if (!(model instanceof kind)) throw new Error('the model has been disposed');
  return model;
}

function stateOf<T>(handle: number): T {
  const entry = states.get(handle);
  if (!entry) throw new Error('the cache has been released');
  return entry.state as T;
}

function describe(meta: Session['inputMetadata'][number]): IoSpec {
  return meta.isTensor
    ? { name: meta.name, type: meta.type, shape: [...meta.shape] }
    : { name: meta.name, type: undefined, shape: [] };
}

async function load(request: Extract<InferenceRequest, { op: 'load' }>): Promise<LoadedModel> {
  const open = (model: string | Uint8Array, externalDataFolder?: string) =>
    createSession(model, { intraOpThreads: request.intraOpThreads, externalDataFolder }).catch((e: unknown) => {
      throw new Error(`${request.where} could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    });
  let decoding: DecodingGraph | undefined;
  try {
    decoding = decodingGraph(request.onnxPath);
  } catch {
    decoding = undefined; // onnxruntime reports what is wrong with the file
  }
  const session = decoding
    ? await open(decoding.bytes, decoding.externalData ? path.dirname(request.onnxPath) : undefined)
    : await open(request.onnxPath);
  try {
    const io = discoverIo(session, request.config, request.where);
    const openFull = decoding ? () => open(request.onnxPath) : undefined;
    models.set(
      request.model,
      request.kind === 'sequence'
        ? new SequenceModel(session, io, request.config)
        : new BatchedCore(session, io, request.config, openFull, request.promptCachePositions),
    );
    const outputs = [...session.outputMetadata.map(describe), ...(decoding?.removed ?? [])];
    return { io, inputs: session.inputMetadata.map(describe), outputs };
  } catch (e) {
    await session.release();
    throw e;
  }
}

async function handle(request: InferenceRequest): Promise<{ result: unknown; transfer?: ArrayBuffer[] }> {
  switch (request.op) {
    case 'load':
      return { result: await load(request) };
    case 'dispose': {
      const model = models.get(request.model);
      models.delete(request.model);
      for (const [handle, entry] of states) if (entry.model === request.model) states.delete(handle);
      await model?.release();
      return { result: undefined };
    }
    case 'release': {
      const entry = states.get(request.handle);
      states.delete(request.handle);
      const model = entry && models.get(entry.model);
      if (model instanceof SequenceModel) model.forget(entry!.state as CacheState);
      return { result: undefined };
    }
    case 'newCache':
      states.set(request.cache, { model: request.model, state: modelOf(request.model, SequenceModel).newCache() });
      return { result: undefined };
    case 'derive': {
      const state = modelOf(request.model, SequenceModel).derive(stateOf<CacheState>(request.from), request.length);
      states.set(request.to, { model: request.model, state });
      return { result: undefined };
    }
    case 'run': {
      const model = modelOf(request.model, SequenceModel);
      const logits = await model.run(stateOf<CacheState>(request.cache), request.ids, request.allPositions);
      return { result: logits, transfer: [logits.buffer as ArrayBuffer] };
    }
    case 'prefill': {
      const { batch, logits, reused } = await modelOf(request.model, BatchedCore).prefill(request.prompts);
      states.set(request.batch, { model: request.model, state: batch });
      return { result: { logits, reused }, transfer: logits.map((l) => l.buffer as ArrayBuffer) };
    }
    case 'step': {
      const model = modelOf(request.model, BatchedCore);
      const from = stateOf<BatchState>(request.from);
      states.delete(request.from); // consumed, whether the step succeeds or not
      const { batch, logits } = await model.step(from, request.tokens);
      states.set(request.to, { model: request.model, state: batch });
      return { result: logits, transfer: logits.map((l) => l.buffer as ArrayBuffer) };
    }
    case 'select': {
      const batch = modelOf(request.model, BatchedCore).select(stateOf<BatchState>(request.from), request.rows);
      states.delete(request.from);
      states.set(request.to, { model: request.model, state: batch });
      return { result: undefined };
    }
    case 'remember':
      modelOf(request.model, BatchedCore).remember(stateOf<BatchState>(request.batch), request.rows);
      return { result: undefined };
    case 'concat': {
      const parts = request.parts.map((part) => stateOf<BatchState>(part));
      for (const part of request.parts) states.delete(part);
      states.set(request.to, { model: request.model, state: modelOf(request.model, BatchedCore).concat(parts) });
      return { result: undefined };
    }
    case 'runTensors':
      return { result: await modelOf(request.model, BatchedCore).runTensors(request.inputs, request.outputNames) };
    case 'stop':
      states.clear();
      for (const model of models.values()) await model.release();
      models.clear();
      process.exit(0); // ends this thread only
      return { result: undefined };
    case 'crash':
      throw new Error(request.message);
  }
}

const port = parentPort;
if (!port) throw new Error('inferenceWorker.ts runs as a worker thread');
// Requests run one after another, in the order they arrive.
let queue = Promise.resolve();
port.on('message', ({ id, request }: InferenceEnvelope) => {
  // Thrown here, outside the queue, the error is uncaught: the worker fails before it runs anything else.
  if (request.op === 'crash') throw new Error(request.message);
  queue = queue.then(async () => {
    let reply: InferenceReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const done = await handle(request);
      reply = { id, result: done.result };
      transfer = done.transfer ?? [];
    } catch (e) {
      reply = { id, error: e instanceof Error ? e.message : String(e) };
    }
    if (id !== 0 || 'error' in reply) port.postMessage(reply, transfer);
  });
});
