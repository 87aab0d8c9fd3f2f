// Text classifiers over HTTP: the classifier folders a service serves (each a loaded version; a reload swaps in the
// next version while requests on the old one finish), `POST /v1/classify {model, input}` → labels with scores, and
// the Open Inference Protocol v2 metadata and infer routes of a classifier (a BYTES "text_input" → "label",
// "score" and "scores"), answered before the language-model routes of the same URLs.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type LoadedClassifier, loadClassifier } from '../classify/classifier';
import { badRequest, notFound } from './errors';

export interface ServedClassifier {
  name: string;
  version: number;
  dir: string;
  classifier: LoadedClassifier;
  /** Requests running on this version. */
  active: number;
}

/** Most texts one request may classify. */
const MAX_TEXTS = 256;

export class ClassifierSet {
  private readonly current = new Map<string, ServedClassifier>();
  private readonly retiring = new Set<ServedClassifier>();

  constructor(private readonly threads = 1) {}

  has(name: string): boolean {
    return this.current.has(name);
  }

  get(name: string): ServedClassifier | undefined {
    return this.current.get(name);
  }

  list(): ServedClassifier[] {
    return [...this.current.values()];
  }

  /** Loads `dir` as `version` of `name` (default: the next, or 1) and switches to it; the old version is released
   * once its requests finish. */
  async reload(name: string, dir: string, version?: number): Promise<ServedClassifier> {
    const old = this.current.get(name);
    const classifier = await loadClassifier(dir, { threads: this.threads });
    const served: ServedClassifier = { name, version: version ?? (old?.version ?? 0) + 1, dir, classifier, active: 0 };
    this.current.set(name, served);
    if (old) this.retire(old);
    return served;
  }

  /** Classifies on the current version of `name`, holding it until the answer is ready. */
  async classify(name: string, texts: readonly string[], version?: string) {
    const served = this.current.get(name);
    if (!served) throw notFound(`classifier ${JSON.stringify(name)} is not served here`);
    if (version !== undefined && version !== String(served.version))
      throw notFound(
        `model ${name} has no version ${JSON.stringify(version)}; the served version is ${served.version}`,
      );
    served.active++;
    try {
      return { served, predictions: await served.classifier.classify(texts) };
    } finally {
      served.active--;
      if (this.retiring.has(served) && served.active === 0) void this.release(served);
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.current.values(), ...this.retiring];
    this.current.clear();
    this.retiring.clear();
    await Promise.all(all.map((s) => s.classifier.dispose().catch(() => {})));
  }

  private retire(served: ServedClassifier): void {
    if (served.active === 0) void this.release(served);
    else this.retiring.add(served);
  }

  private async release(served: ServedClassifier): Promise<void> {
    this.retiring.delete(served);
    await served.classifier.dispose().catch(() => {});
  }
}

function texts(value: unknown, where: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string'))
    throw badRequest(`${where} must be a string or a non-empty list of strings`, where);
  if (list.length > MAX_TEXTS) throw badRequest(`at most ${MAX_TEXTS} texts per request`, where);
  return list;
}

export function registerClassifyRoutes(app: FastifyInstance, classifiers: ClassifierSet): void {
  app.post('/v1/classify', async (request) => {
    const body = request.body as { model?: unknown; input?: unknown } | null;
    if (!body || typeof body !== 'object') throw badRequest('the body must be {"model": NAME, "input": [texts]}');
    if (typeof body.model !== 'string') throw badRequest('"model" must be the name of a served classifier', 'model');
    const { served, predictions } = await classifiers.classify(body.model, texts(body.input, 'input'));
    return {
      object: 'list',
      model: served.name,
      model_version: String(served.version),
      labels: served.classifier.labels,
      data: predictions.map((p, index) => ({
        index,
        label: p.label,
        score: p.score,
        scores: Object.fromEntries(served.classifier.labels.map((label, i) => [label, p.scores[i]])),
      })),
    };
  });

  // The OIP routes of a classifier share their URLs with the language models' (inferenceRoutes.ts): answer them
  // here, before those handlers run, when the name is a classifier's.
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url ?? '';
    if (!route.startsWith('/v2/models/:name')) return;
    const { name, version } = request.params as { name?: string; version?: string };
    const served = name !== undefined ? classifiers.get(name) : undefined;
    if (!served) return;
    if (version !== undefined && version !== String(served.version))
      throw notFound(
        `model ${name} has no version ${JSON.stringify(version)}; the served version is ${served.version}`,
      );
    const tail = route.replace(/^\/v2\/models\/:name(\/versions\/:version)?/, '');
    if (request.method === 'GET' && tail === '') {
      return reply.send({
        name: served.name,
        versions: [String(served.version)],
        platform: 'onnxruntime_onnx',
        parameters: { task: 'text-classification', labels: served.classifier.labels.join(',') },
        inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [-1] }],
        outputs: [
          { name: 'label', datatype: 'BYTES', shape: [-1] },
          { name: 'score', datatype: 'FP32', shape: [-1] },
          { name: 'scores', datatype: 'FP32', shape: [-1, served.classifier.labels.length] },
        ],
      });
    }
    if (request.method === 'GET' && tail === '/ready') return reply.send({ name: served.name, ready: true });
    if (request.method === 'POST' && tail === '/infer') {
      const body = request.body as { id?: unknown; inputs?: { name?: string; data?: unknown }[] } | null;
      const input = Array.isArray(body?.inputs) ? body.inputs.find((i) => i?.name === 'text_input') : undefined;
      if (!input) throw badRequest('a classifier takes one BYTES input "text_input" with the texts', 'inputs');
      if (body?.id !== undefined && typeof body.id !== 'string') throw badRequest('"id" must be a string');
      const { predictions } = await classifiers.classify(served.name, texts(input.data, 'text_input'), version);
      const k = served.classifier.labels.length;
      return reply.send({
        model_name: served.name,
        model_version: String(served.version),
        ...(body?.id !== undefined ? { id: body.id } : {}),
        parameters: { labels: served.classifier.labels.join(',') },
        outputs: [
          { name: 'label', datatype: 'BYTES', shape: [predictions.length], data: predictions.map((p) => p.label) },
          { name: 'score', datatype: 'FP32', shape: [predictions.length], data: predictions.map((p) => p.score) },
          {
            name: 'scores',
            datatype: 'FP32',
            shape: [predictions.length, k],
            data: predictions.flatMap((p) => p.scores),
          },
        ],
      });
    }
    throw badRequest(`${request.method} ${route.replace(':name', served.name)} is not available for a classifier`);
  });
}
