// Encodes float32 tensors in the safetensors format (8-byte header length, JSON header, raw data) and decodes
// F32, BF16 and F16 ones (hub checkpoints are usually BF16) to float32; the format PyTorch and Hugging Face tools
// load. Write the result with util/atomicFile's writeFileAtomic.

export type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

export function encodeSafetensors(tensors: Tensors, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let position = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, position);
    position += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Buffer): { tensors: Tensors; metadata: Record<string, string> } {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const base = 8 + headerLength;
  const tensors: Tensors = new Map();
  for (const [name, entry] of Object.entries(header) as [
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] },
  ][]) {
    if (name === '__metadata__') continue;
    const [start, end] = entry.data_offsets;
    const data = toFloat32(name, entry.dtype, bytes.subarray(base + start, base + end));
    tensors.set(name, { shape: entry.shape, data });
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

function toFloat32(name: string, dtype: string, raw: Buffer): Float32Array {
  if (dtype === 'F32') {
    const data = new Float32Array(raw.length / 4);
    Buffer.from(data.buffer).set(raw);
    return data;
  }
  if (dtype !== 'BF16' && dtype !== 'F16') {
    throw new Error(`${name}: tensors of type ${dtype} are not supported (F32, BF16 and F16 are)`);
  }
  const halves = new Uint16Array(raw.length / 2);
  Buffer.from(halves.buffer).set(raw);
  const data = new Float32Array(halves.length);
  if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32.
    const words = new Uint32Array(data.buffer);
    for (let i = 0; i < halves.length; i++) words[i] = halves[i] << 16;
    return data;
  }
  for (let i = 0; i < halves.length; i++) data[i] = halfToFloat(halves[i]);
  return data;
}

/** IEEE 754 half precision → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
