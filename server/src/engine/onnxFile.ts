// Writes a ModelDescription as an ONNX file, with its large initializers in ONNX external data when asked or when
// one protobuf could not hold the graph (2 GB): the tensors go to `<graph file>_data` (model.onnx_data, the name
// onnx's tools and transformers.js use) at 4 KiB-aligned offsets, streamed tensor by tensor (no buffer of the
// whole file), and the graph records location, offset and length for each. Both files are written to temp files
// first and renamed into place, the graph last, so a reader sees a complete pair.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ModelDescription, encodeModel, planExternalData, tensorBytes } from './onnx';

/** The most bytes one protobuf message (and so one ONNX file without external data) may have. */
export const MAX_PROTOBUF_BYTES = 2 ** 31 - 1;
/** Room left below the limit for the graph's nodes, names and shapes when deciding on external data. */
const GRAPH_STRUCTURE_MARGIN = 64 * 2 ** 20;
/** onnx's convert_model_to_external_data default: smaller tensors stay in the graph. */
export const DEFAULT_EXTERNAL_DATA_THRESHOLD = 1024;

export interface WriteModelOptions {
  /**
   * Store initializers of at least this many bytes in external data. Absent: only when the initializers would
   * not fit in one file, and then every one of at least 1 KiB.
   */
  externalDataThreshold?: number;
}

export interface WrittenModel {
  /** Bytes of the graph file. */
  graphBytes: number;
  /** The external data file (absolute or as `file` was given), when one was written. */
  externalDataFile?: string;
  /** Bytes of the external data file (0 without one). */
  externalDataBytes: number;
}

/** The external data file that goes with an ONNX graph file: model.onnx → model.onnx_data. */
export function externalDataFileOf(file: string): string {
  return `${file}_data`;
}

export function writeModelFile(file: string, m: ModelDescription, options: WriteModelOptions = {}): WrittenModel {
  const dataFile = externalDataFileOf(file);
  const initializerBytes = m.initializers.reduce((sum, i) => sum + i.tensor.data.byteLength, 0);
  const threshold =
    options.externalDataThreshold ??
    (initializerBytes > MAX_PROTOBUF_BYTES - GRAPH_STRUCTURE_MARGIN ? DEFAULT_EXTERNAL_DATA_THRESHOLD : undefined);
  const layout = threshold === undefined ? undefined : planExternalData(m, path.basename(dataFile), threshold);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const graphTemp = `${file}.tmp-${process.pid}`;
  const dataTemp = `${dataFile}.tmp-${process.pid}`;
  try {
    if (layout && layout.tensors.size > 0) {
      writeExternalData(dataTemp, m, layout.tensors);
    }
    const graph = encodeModel(m, layout?.tensors.size ? layout : undefined);
    if (graph.length > MAX_PROTOBUF_BYTES) {
      throw new Error(`${file}: the graph needs ${graph.length} bytes, over protobuf's 2 GB; use external data`);
    }
    writeAndSync(graphTemp, [{ bytes: graph, offset: 0 }]);
    if (layout && layout.tensors.size > 0) {
      fs.renameSync(dataTemp, dataFile);
      fs.renameSync(graphTemp, file);
      return { graphBytes: graph.length, externalDataFile: dataFile, externalDataBytes: layout.bytes };
    }
    fs.renameSync(graphTemp, file);
    fs.rmSync(dataFile, { force: true }); // an earlier version's data, which nothing refers to any more
    return { graphBytes: graph.length, externalDataBytes: 0 };
  } finally {
    fs.rmSync(graphTemp, { force: true });
    fs.rmSync(dataTemp, { force: true });
  }
}

function writeExternalData(
  file: string,
  m: ModelDescription,
  places: Map<string, { offset: number; length: number }>,
): void {
  const parts = m.initializers.flatMap(({ name, tensor }) => {
    const place = places.get(name);
    return place ? [{ bytes: tensorBytes(tensor), offset: place.offset }] : [];
  });
  writeAndSync(file, parts);
}

/** Writes each part at its offset (the gaps stay zero), then fsyncs. */
function writeAndSync(file: string, parts: { bytes: Uint8Array; offset: number }[]): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const { bytes, offset } of parts) {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, offset + done);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
