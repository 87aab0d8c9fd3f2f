// The columns of a labelled CSV/JSONL file, read from its first rows so that Train Model… can offer the text and
// label columns: each column's first values, how many distinct values the rows read have and their mean length.
// Whole-file checks (encoding errors, malformed rows further down) are the classifier training's own.
import * as fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import { dataFormatOf } from '../classify/labelledData';
import type { PreviewLabelledData } from '../protocol';

/** Bytes read from the start of the file, and rows parsed from them, at most. */
const PREVIEW_BYTES = 256 * 1024;
const PREVIEW_ROWS = 200;
const SAMPLES = 3;
const SAMPLE_CHARACTERS = 80;

export function previewLabelledData(file: string): PreviewLabelledData.Result {
  const format = dataFormatOf(file);
  const text = startOfFile(file);
  const records = format === 'csv' ? csvRecords(text, file) : jsonlRecords(text, file);
  if (records.length === 0) throw new Error(`${file} has no rows`);
  const names: string[] = [];
  for (const record of records) for (const key of Object.keys(record)) if (!names.includes(key)) names.push(key);
  const columns = names.map((name) => {
    const values = records.map((r) => r[name] ?? '').filter((v) => v.trim() !== '');
    return {
      name,
      samples: values
        .slice(0, SAMPLES)
        .map((v) => (v.length > SAMPLE_CHARACTERS ? `${v.slice(0, SAMPLE_CHARACTERS)}…` : v)),
      distinct: new Set(values).size,
      meanLength: values.length ? values.reduce((n, v) => n + v.length, 0) / values.length : 0,
    };
  });
  return { file, format, rows: records.length, columns };
}

/** The first bytes as text (UTF-8, or UTF-16 by its byte-order mark), cut after the last whole line. */
function startOfFile(file: string): string {
  const fd = fs.openSync(file, 'r');
  let bytes: Buffer;
  let whole: boolean;
  try {
    const buffer = Buffer.alloc(PREVIEW_BYTES);
    const read = fs.readSync(fd, buffer, 0, PREVIEW_BYTES, 0);
    bytes = buffer.subarray(0, read);
    whole = read < PREVIEW_BYTES;
  } finally {
    fs.closeSync(fd);
  }
  const encoding =
    bytes[0] === 0xff && bytes[1] === 0xfe ? 'utf-16le' : bytes[0] === 0xfe && bytes[1] === 0xff ? 'utf-16be' : 'utf-8';
  const text = new TextDecoder(encoding).decode(bytes); // strips the BOM
  if (whole) return text;
  const end = text.lastIndexOf('\n');
  return end > 0 ? text.slice(0, end + 1) : text;
}

function csvRecords(text: string, file: string): Record<string, string>[] {
  // A cut inside a quoted field fails the last record only: retry on fewer lines.
  let body = text;
  for (let attempt = 0; ; attempt++) {
    try {
      return parse(body, { columns: true, skip_empty_lines: true, relax_column_count: true, to: PREVIEW_ROWS });
    } catch (e) {
      const end = body.lastIndexOf('\n', body.length - 2);
      if (attempt >= 20 || end <= 0) throw new Error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
      body = body.slice(0, end + 1);
    }
  }
}

function jsonlRecords(text: string, file: string): Record<string, string>[] {
  const records: Record<string, string>[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (records.length >= PREVIEW_ROWS) break;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${file}: row ${i + 1} is not valid JSON`);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value))
      throw new Error(`${file}: row ${i + 1} is not a JSON object`);
    const record: Record<string, string> = {};
    for (const [key, field] of Object.entries(value))
      if (field === null || typeof field !== 'object') record[key] = field === null ? '' : String(field);
    records.push(record);
  }
  return records;
}
