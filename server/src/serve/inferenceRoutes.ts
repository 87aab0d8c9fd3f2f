// Open Inference Protocol v2 (the REST API of Triton and KServe): server and model health, model metadata with
// the inputs and outputs the ONNX graph declares, and POST /v2/models/{name}[/versions/{v}]/infer, which runs
// the graph directly on the request's tensors (queued with the model's other work) or, for a BYTES "text_input",
// generates text; plus the generate extension (POST …/generate with "text_input").
import type { FastifyInstance } from 'fastify';
import { asHttpError, badRequest, notFound, unavailable } from './errors';
import type { ServedModel } from './modelSet';
import type { RouteContext } from './routeContext';
import { checkParameters, outputJson, parseInferRequest } from './tensorCodec';
import { TEXT_INPUT, TEXT_OUTPUT, generateTexts, textInferPrompts } from './textInference';
import { SERVICE_VERSION } from './version';

interface ModelParams {
  name: string;
  version?: string;
}

export function registerInferenceRoutes(app: FastifyInstance, context: RouteContext): void {
  /** The model of a /v2/models/{name}[/versions/{version}] URL. */
  const modelOf = (params: ModelParams): ServedModel => {
    const model = context.model(params.name);
    if (params.version !== undefined && params.version !== String(model.version)) {
      throw notFound(
        `model ${params.name} has no version ${JSON.stringify(params.version)}; the served version is ${model.version}`,
      );
    }
    return model;
  };

  app.get('/v2', async () => ({ name: 'modelwright', version: SERVICE_VERSION, extensions: ['generate'] }));

  app.get('/v2/health/live', async () => ({ live: true }));

  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = context.isReady();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  for (const prefix of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get<{ Params: ModelParams }>(prefix, async (request) => {
      const model = modelOf(request.params);
      const tensor = (spec: { name: string; datatype: string; shape: number[] }) => ({
        name: spec.name,
        datatype: spec.datatype,
        shape: spec.shape,
      });
      return {
        name: model.name,
        versions: [String(model.version)],
        platform: 'onnxruntime_onnx',
        inputs: model.decoder.inputs.map(tensor),
        outputs: model.decoder.outputs.map(tensor),
      };
    });

    app.get<{ Params: ModelParams }>(`${prefix}/ready`, async (request, reply) => {
      const model = modelOf(request.params);
      const ready = context.isReady();
      return reply.code(ready ? 200 : 503).send({ name: model.name, ready });
    });

    app.post<{ Params: ModelParams }>(`${prefix}/infer`, async (request, reply) => {
      const model = modelOf(request.params);
      if (!context.isReady()) throw unavailable('the server is shutting down');
      const prompts = textInferPrompts(request.body);
      if (prompts) {
        const body = request.body as { id?: unknown; parameters?: unknown };
        if (body.id !== undefined && typeof body.id !== 'string') throw badRequest('"id" must be a string');
        const abort = context.requestSignal(request, reply);
        try {
          const outcomes = await generateTexts(model, prompts, body.parameters, abort.signal);
          return {
            model_name: model.name,
            model_version: String(model.version),
            ...(body.id !== undefined ? { id: body.id } : {}),
            parameters: {
              prompt_tokens: outcomes.reduce((n, o) => n + o.promptTokens, 0),
              completion_tokens: outcomes.reduce((n, o) => n + o.completionTokens, 0),
            },
            outputs: [
              { name: TEXT_OUTPUT, datatype: 'BYTES', shape: [outcomes.length], data: outcomes.map((o) => o.text) },
            ],
          };
        } catch (e) {
          throw asHttpError(e);
        } finally {
          abort.dispose();
        }
      }
      const parsed = parseInferRequest(
        request.body,
        model.decoder.inputs,
        model.decoder.outputs,
        context.inferLimits(model),
      );
      const abort = context.requestSignal(request, reply);
      try {
        const outputs = await model.scheduler.infer(
          () =>
            model.decoder.runTensors(parsed.inputs, parsed.outputNames).catch((e: unknown) => {
              // The tensors passed every check we can make; what onnxruntime still refuses is the caller's to fix.
              throw badRequest(`the model could not run these inputs: ${e instanceof Error ? e.message : String(e)}`);
            }),
          abort.signal,
        );
        return {
          model_name: model.name,
          model_version: String(model.version),
          ...(parsed.id !== undefined ? { id: parsed.id } : {}),
          outputs: outputs.map(outputJson),
        };
      } catch (e) {
        throw asHttpError(e);
      } finally {
        abort.dispose();
      }
    });

    app.post<{ Params: ModelParams }>(`${prefix}/generate`, async (request, reply) => {
      const model = modelOf(request.params);
      if (!context.isReady()) throw unavailable('the server is shutting down');
      const body = request.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw badRequest('the request body must be a JSON object with "text_input"');
      const { id, text_input: text, parameters } = body as Record<string, unknown>;
      if (id !== undefined && typeof id !== 'string') throw badRequest('"id" must be a string');
      if (typeof text !== 'string') throw badRequest(`"${TEXT_INPUT}" must be a string`);
      checkParameters(parameters, 'parameters');
      const abort = context.requestSignal(request, reply);
      try {
        const [outcome] = await generateTexts(model, [text], parameters, abort.signal);
        return {
          ...(id !== undefined ? { id } : {}),
          model_name: model.name,
          model_version: String(model.version),
          [TEXT_OUTPUT]: outcome.text,
          finish_reason: outcome.finishReason,
        };
      } catch (e) {
        throw asHttpError(e);
      } finally {
        abort.dispose();
      }
    });
  }
}
