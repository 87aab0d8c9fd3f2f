// Encodes float32 tensors in the safetensors format (8-byte header length, JSON header, raw data) and decodes
// F32, BF16 and F16 ones (hub checkpoints are usually BF16) to float32; the format PyTorch and Hugging Face tools
// load. Write the result with util/atomicFile's writeFileAtomic. Files are read a tensor at a time, so checkpoints
// over 2 GB (a single-file 1.5B model) load too.
import * as fs from 'node:fs';

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

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The header's tensor entries and metadata, checked against the size of the data that follows it. */
function parseHeader(json: string, dataBytes: number, where: string) {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new Error(`${where}: not a safetensors file (its header is not JSON)`);
  }
  const entries: [string, HeaderEntry][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = (entry as HeaderEntry).data_offsets ?? [];
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end && end <= dataBytes))
      throw new Error(`${where}: tensor ${name} lies outside the file (truncated download?)`);
    entries.push([name, entry as HeaderEntry]);
  }
  return { entries, metadata: (header.__metadata__ ?? {}) as Record<string, string> };
}

export function decodeSafetensors(bytes: Buffer): { tensors: Tensors; metadata: Record<string, string> } {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const base = 8 + headerLength;
  const json = bytes.subarray(8, base).toString('utf8');
  const { entries, metadata } = parseHeader(json, bytes.length - base, 'safetensors');
  const tensors: Tensors = new Map();
  for (const [name, entry] of entries) {
    const [start, end] = entry.data_offsets;
    tensors.set(name, {
      shape: entry.shape,
      data: toFloat32(name, entry.dtype, bytes.subarray(base + start, base + end)),
    });
  }
  return { tensors, metadata };
}

/** Every tensor of a safetensors file as float32, read one tensor at a time (never the whole file at once). */
export function readSafetensorsFile(file: string): { tensors: Tensors; metadata: Record<string, string> } {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const read = (length: number, position: number): Buffer => {
      const buffer = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, buffer, done, length - done, position + done);
        if (n === 0) throw new Error(`${file}: ends early (truncated download?)`);
        done += n;
      }
      return buffer;
    };
    if (size < 8) throw new Error(`${file}: not a safetensors file (${size} bytes)`);
    const headerLength = Number(read(8, 0).readBigUInt64LE(0));
    if (headerLength > size - 8) throw new Error(`${file}: not a safetensors file (header longer than the file)`);
    const base = 8 + headerLength;
    const { entries, metadata } = parseHeader(read(headerLength, 8).toString('utf8'), size - base, file);
    const tensors: Tensors = new Map();
    for (const [name, entry] of entries) {
      const [start, end] = entry.data_offsets;
      tensors.set(name, { shape: entry.shape, data: toFloat32(name, entry.dtype, read(end - start, base + start)) });
    }
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
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
