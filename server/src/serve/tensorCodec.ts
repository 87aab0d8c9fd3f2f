// Open Inference Protocol v2 tensors in JSON: checks an infer request against the graph's declared inputs
// (names, datatypes, ranks, fixed and symbolic dimensions, element counts, value ranges, a size budget) and turns
// it into typed arrays; turns output tensors back into JSON. Every problem is a 400 with a message.
import type { HostTensor, TensorData, TensorDatatype, TensorSpec } from '../runtime/batchedDecoder';
import { badRequest } from './errors';

export interface InferLimits {
  /** Largest value of any dynamic dimension (e.g. the model's context length). */
  maxDimension: number;
  /** Most elements the requested outputs may have together, estimated from the input dimensions. */
  maxOutputElements: number;
}

export interface ParsedInfer {
  id?: string;
  inputs: HostTensor[];
  outputNames: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates an infer request body and converts its tensors. */
export function parseInferRequest(
  body: unknown,
  inputs: readonly TensorSpec[],
  outputs: readonly TensorSpec[],
  limits: InferLimits,
): ParsedInfer {
  if (!isObject(body)) throw badRequest('the request body must be a JSON object with an "inputs" array');
  if (body.id !== undefined && typeof body.id !== 'string') throw badRequest('"id" must be a string');
  checkParameters(body.parameters, 'parameters');
  if (!Array.isArray(body.inputs) || body.inputs.length === 0) throw badRequest('"inputs" must be a non-empty array');

  const specs = new Map(inputs.map((spec) => [spec.name, spec]));
  const given = new Map<string, HostTensor>();
  const symbols = new Map<string, { value: number; where: string }>();
  for (const [index, raw] of body.inputs.entries()) {
    if (!isObject(raw)) throw badRequest(`inputs[${index}] must be an object with name, shape, datatype and data`);
    if (typeof raw.name !== 'string') throw badRequest(`inputs[${index}].name must be a string`);
    checkParameters(raw.parameters, `inputs[${index}].parameters`);
    if (isObject(raw.parameters) && raw.parameters.binary_data_size !== undefined)
      throw badRequest('binary tensor data is not supported: send "data" as JSON');
    const name = raw.name;
    const spec = specs.get(name);
    if (!spec)
      throw badRequest(`unknown input "${name}"; the model's inputs are ${inputs.map((i) => i.name).join(', ')}`);
    if (given.has(name)) throw badRequest(`input "${name}" is given twice`);
    if (raw.datatype !== spec.datatype)
      throw badRequest(`input "${name}" has datatype ${String(raw.datatype)}, the model expects ${spec.datatype}`);
    const shape = parseShape(raw.shape, name);
    if (shape.length !== spec.shape.length) {
      throw badRequest(
        `input "${name}" has shape [${shape}], the model expects rank ${spec.shape.length} ([${spec.shape}])`,
      );
    }
    shape.forEach((dim, axis) => {
      const expected = spec.shape[axis];
      if (expected >= 0 && dim !== expected)
        throw badRequest(
          `input "${name}" has shape [${shape}], the model expects [${spec.shape}] ` +
            `(dimension ${axis} must be ${expected})`,
        );
      if (expected < 0 && dim > limits.maxDimension)
        throw badRequest(`input "${name}" dimension ${axis} is ${dim}, at most ${limits.maxDimension} is allowed`);
      const symbol = spec.symbols[axis];
      if (expected < 0 && symbol) {
        const seen = symbols.get(symbol);
        if (seen && seen.value !== dim)
          throw badRequest(`dimension "${symbol}" is ${dim} in input "${name}" but ${seen.value} in ${seen.where}`);
        symbols.set(symbol, { value: dim, where: `input "${name}"` });
      }
    });
    const count = shape.reduce((a, b) => a * b, 1);
    const values: unknown[] = [];
    flatten(raw.data, values, name, count);
    if (values.length !== count)
      throw badRequest(`input "${name}" has ${values.length} values, its shape [${shape}] needs ${count}`);
    given.set(name, { name, datatype: spec.datatype, shape, data: toTypedArray(values, spec.datatype, name) });
  }
  const missing = inputs.filter((spec) => !given.has(spec.name)).map((spec) => spec.name);
  if (missing.length)
    throw badRequest(`missing input${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')}`);

  let outputNames = outputs.map((o) => o.name);
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) throw badRequest('"outputs" must be an array of {"name": ...}');
    const known = new Set(outputNames);
    outputNames = body.outputs.map((o, index) => {
      if (!isObject(o) || typeof o.name !== 'string')
        throw badRequest(`outputs[${index}] must be an object with a "name"`);
      checkParameters(o.parameters, `outputs[${index}].parameters`);
      if (isObject(o.parameters) && o.parameters.binary_data === true)
        throw badRequest(`outputs[${index}]: binary tensor data is not supported; outputs are sent as JSON`);
      if (!known.has(o.name))
        throw badRequest(`unknown output "${o.name}"; the model's outputs are ${[...known].join(', ')}`);
      return o.name;
    });
    if (new Set(outputNames).size !== outputNames.length) throw badRequest('an output is requested twice');
    if (outputNames.length === 0) outputNames = outputs.map((o) => o.name);
  }

  // The outputs' sizes from the symbols the inputs fixed; an unknown symbol counts as maxDimension.
  let elements = 0;
  for (const output of outputs.filter((o) => outputNames.includes(o.name))) {
    elements += output.shape.reduce((n, dim, axis) => {
      const symbol = output.symbols[axis];
      const value =
        dim >= 0 ? dim : ((symbol !== undefined ? symbols.get(symbol)?.value : undefined) ?? limits.maxDimension);
      return n * value;
    }, 1);
  }
  if (elements > limits.maxOutputElements) {
    throw badRequest(
      `the requested outputs would hold about ${elements} values, more than the ${limits.maxOutputElements} allowed; ` +
        'request fewer outputs or smaller inputs',
    );
  }
  return { id: body.id as string | undefined, inputs: [...given.values()], outputNames };
}

/**
 * The protocol's `parameters`: an object whose values are strings, numbers or booleans. Which ones a server uses is
 * its own business; the rest are ignored.
 */
export function checkParameters(parameters: unknown, where: string): Record<string, string | number | boolean> {
  if (parameters === undefined) return {};
  if (!isObject(parameters)) throw badRequest(`"${where}" must be an object`);
  for (const [key, value] of Object.entries(parameters)) {
    if (
      !(
        typeof value === 'string' ||
        typeof value === 'boolean' ||
        (typeof value === 'number' && Number.isFinite(value))
      )
    )
      throw badRequest(`"${where}.${key}" must be a string, a number or a boolean`);
  }
  return parameters as Record<string, string | number | boolean>;
}

function parseShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw badRequest(`input "${name}" needs "shape", an array of non-negative integers`);
  }
  return shape as number[];
}

/** Appends the leaves of a (possibly nested, row-major) data array, stopping once there are more than `limit`. */
function flatten(data: unknown, out: unknown[], name: string, limit: number): void {
  if (!Array.isArray(data)) throw badRequest(`input "${name}" needs "data", an array (flat or nested)`);
  for (const item of data) {
    if (Array.isArray(item)) flatten(item, out, name, limit);
    else out.push(item);
    if (out.length > limit) return;
  }
}

function toTypedArray(values: unknown[], datatype: TensorDatatype, name: string): TensorData {
  const bad = (i: number, what: string) =>
    badRequest(`input "${name}" value ${i} (${JSON.stringify(values[i])}) is not ${what}`);
  switch (datatype) {
    case 'INT64': {
      const out = new BigInt64Array(values.length);
      values.forEach((v, i) => {
        if (!Number.isSafeInteger(v)) throw bad(i, 'an integer');
        out[i] = BigInt(v as number);
      });
      return out;
    }
    case 'INT32':
    case 'INT8':
    case 'UINT8': {
      const [min, max, Type] =
        datatype === 'INT32'
          ? [-(2 ** 31), 2 ** 31 - 1, Int32Array]
          : datatype === 'INT8'
            ? [-128, 127, Int8Array]
            : [0, 255, Uint8Array];
      const out = new Type(values.length);
      values.forEach((v, i) => {
        if (!(Number.isInteger(v) && (v as number) >= min && (v as number) <= max))
          throw bad(i, `an integer in ${min}..${max}`);
        out[i] = v as number;
      });
      return out;
    }
    case 'BOOL': {
      const out = new Uint8Array(values.length);
      values.forEach((v, i) => {
        if (typeof v !== 'boolean') throw bad(i, 'true or false');
        out[i] = v ? 1 : 0;
      });
      return out;
    }
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP32' ? new Float32Array(values.length) : new Float64Array(values.length);
      values.forEach((v, i) => {
        if (typeof v !== 'number') throw bad(i, 'a number');
        out[i] = v;
      });
      return out;
    }
    case 'FP16':
      throw badRequest(`input "${name}": FP16 tensors in JSON are not supported`);
  }
}

/** An output tensor as OIP JSON (INT64 values beyond 2^53 lose precision). */
export function outputJson(tensor: HostTensor): {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
  data: (number | boolean)[];
} {
  let data: (number | boolean)[];
  if (tensor.data instanceof BigInt64Array) data = Array.from(tensor.data, (v) => Number(v));
  else if (tensor.datatype === 'BOOL') data = Array.from(tensor.data as Uint8Array, (v) => v !== 0);
  else if (tensor.datatype === 'FP16') data = Array.from(tensor.data as Uint16Array, halfToNumber);
  else data = Array.from(tensor.data as Float32Array);
  return { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, data };
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
