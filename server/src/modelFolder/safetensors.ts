// Encodes and decodes float32 tensors in the safetensors format (8-byte header length, JSON header, raw data),
// the format PyTorch and Hugging Face tools load; write the result with util/atomicFile's writeFileAtomic.

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
    if (entry.dtype !== 'F32') throw new Error(`${name}: only F32 tensors are supported, found ${entry.dtype}`);
    const [start, end] = entry.data_offsets;
    const data = new Float32Array((end - start) / 4);
    Buffer.from(data.buffer).set(bytes.subarray(base + start, base + end));
    tensors.set(name, { shape: entry.shape, data });
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}
