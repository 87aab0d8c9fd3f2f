// Reads a labelled data set from a workspace CSV or JSONL file, streaming: encoding detection (UTF-8 with or without
// BOM, UTF-16 by BOM; anything else is refused naming the row), a memory budget, and errors that name the row of
// a malformed record or a missing column; empty and duplicate rows are skipped and reported, classes counted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse';

export interface LabelledRow {
  text: string;
  label: string;
  /** Line of the file the row ends on (1-based; the CSV header is line 1). */
  row: number;
}

export interface DataReport {
  file: string;
  format: 'csv' | 'jsonl';
  encoding: 'utf-8' | 'utf-16le' | 'utf-16be';
  rows: LabelledRow[];
  /** Rows with an empty text or label, by row number. */
  emptyRows: number[];
  /** Rows whose text repeats an earlier row's, by row number (the first one is kept). */
  duplicateRows: number[];
  /** Duplicates whose label differs from the kept row's. */
  conflictingDuplicates: number;
  /** Rows per label, most frequent first. */
  classes: { label: string; count: number }[];
}

export interface ReadOptions {
  text: string;
  label: string;
  /** Refuse files larger than this many bytes (default 256 MB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_DATA_BYTES = 256 * 1024 * 1024;

/** A data problem: the message names the file and, where there is one, the row. */
export class DataError extends Error {
  constructor(
    message: string,
    readonly row?: number,
  ) {
    super(message);
  }
}

export function dataFormatOf(file: string): 'csv' | 'jsonl' {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new DataError(`${file}: expected a .csv or .jsonl file`);
}

/** Reads every row of the file; throws DataError for anything that would make a wrong data set. */
export async function readLabelledData(file: string, options: ReadOptions): Promise<DataReport> {
  const format = dataFormatOf(file);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DATA_BYTES;
  const size = fs.statSync(file).size;
  if (size > maxBytes) {
    throw new DataError(
      `${file} is ${(size / 1e6).toFixed(1)} MB, over the memory budget of ${(maxBytes / 1e6).toFixed(1)} MB; ` +
        'use a sample of it or raise the budget',
    );
  }
  const raw: LabelledRow[] = [];
  const encoding = format === 'csv' ? await readCsv(file, options, raw) : await readJsonl(file, options, raw);
  return summarize(file, format, encoding, raw);
}

function summarize(
  file: string,
  format: DataReport['format'],
  encoding: DataReport['encoding'],
  raw: LabelledRow[],
): DataReport {
  const emptyRows: number[] = [];
  const duplicateRows: number[] = [];
  let conflictingDuplicates = 0;
  const seen = new Map<string, string>();
  const rows: LabelledRow[] = [];
  for (const row of raw) {
    const text = row.text.trim();
    const label = row.label.trim();
    if (!text || !label) {
      emptyRows.push(row.row);
      continue;
    }
    const earlier = seen.get(text);
    if (earlier !== undefined) {
      duplicateRows.push(row.row);
      if (earlier !== label) conflictingDuplicates++;
      continue;
    }
    seen.set(text, label);
    rows.push({ text, label, row: row.row });
  }
  if (rows.length === 0) throw new DataError(`${file} has no rows with both a text and a label`);
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.label, (counts.get(row.label) ?? 0) + 1);
  const classes = [...counts]
    .map(([label, count]) => ({ label, count }))
    .sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
  if (classes.length < 2) {
    throw new DataError(
      `${file} has one class only ("${classes[0].label}" in all ${rows.length} rows): a classifier needs two or more`,
    );
  }
  return { file, format, encoding, rows, emptyRows, duplicateRows, conflictingDuplicates, classes };
}

/** Decoded text chunks of a file, with its encoding from the BOM; a non-UTF-8 byte is a DataError naming its line. */
async function* decodedChunks(file: string, found: (encoding: DataReport['encoding']) => void): AsyncGenerator<string> {
  let decoder: InstanceType<typeof TextDecoder> | undefined;
  let line = 1;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 16 }) as AsyncIterable<Buffer>) {
    let bytes = chunk;
    if (!decoder) {
      let encoding: DataReport['encoding'] = 'utf-8';
      if (bytes[0] === 0xff && bytes[1] === 0xfe) encoding = 'utf-16le';
      else if (bytes[0] === 0xfe && bytes[1] === 0xff) encoding = 'utf-16be';
      found(encoding);
      decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: false });
      if (encoding === 'utf-8' && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
        bytes = bytes.subarray(3);
    }
    let text: string;
    try {
      text = decoder.decode(bytes, { stream: true });
    } catch {
      throw new DataError(
        `${file}: row ${line + firstInvalidLine(bytes)} is not valid UTF-8 (save the file as UTF-8)`,
        line + firstInvalidLine(bytes),
      );
    }
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
    yield text;
  }
  if (decoder) {
    try {
      const rest = decoder.decode();
      if (rest) yield rest;
    } catch {
      throw new DataError(`${file}: row ${line} is not valid UTF-8 (it ends inside a character)`, line);
    }
  }
}

/** Lines (0-based) into `bytes` before the first line that does not decode as UTF-8. */
function firstInvalidLine(bytes: Buffer): number {
  let start = 0;
  let lines = 0;
  const strict = new TextDecoder('utf-8', { fatal: true });
  while (start < bytes.length) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    try {
      strict.decode(bytes.subarray(start, end));
    } catch {
      return lines;
    }
    lines++;
    start = end + 1;
  }
  return lines;
}

async function readCsv(file: string, options: ReadOptions, out: LabelledRow[]): Promise<DataReport['encoding']> {
  let encoding: DataReport['encoding'] = 'utf-8';
  const parser = parse({ columns: true, info: true, skip_empty_lines: true, trim: false, relax_quotes: false });
  const feeding = (async () => {
    try {
      for await (const text of decodedChunks(file, (e) => (encoding = e))) {
        if (parser.destroyed) return;
        if (!parser.write(text))
          await new Promise((resolve) => {
            parser.once('drain', resolve);
            parser.once('close', resolve);
          });
      }
      if (!parser.destroyed) parser.end();
    } catch (e) {
      parser.destroy(e as Error);
    }
  })();
  let checked = false;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: Info }>) {
      if (!checked) {
        checked = true;
        const columns = Object.keys(record);
        for (const column of [options.text, options.label]) {
          if (!columns.includes(column))
            throw new DataError(
              `${file}: no column "${column}" in the header (row 1); columns: ${columns.join(', ')}`,
              1,
            );
        }
      }
      out.push({ text: record[options.text] ?? '', label: record[options.label] ?? '', row: info.lines });
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    const error = e as Error & { lines?: number; code?: string };
    if (error.lines !== undefined)
      throw new DataError(`${file}: row ${error.lines} is malformed: ${error.message}`, error.lines);
    throw e;
  } finally {
    parser.destroy();
    await feeding;
  }
  return encoding;
}

interface Info {
  lines: number;
}

async function readJsonl(file: string, options: ReadOptions, out: LabelledRow[]): Promise<DataReport['encoding']> {
  let encoding: DataReport['encoding'] = 'utf-8';
  let pending = '';
  let row = 0;
  const take = (line: string) => {
    row++;
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${file}: row ${row} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, row);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value))
      throw new DataError(`${file}: row ${row} is not a JSON object`, row);
    const record = value as Record<string, unknown>;
    for (const key of [options.text, options.label]) {
      if (!(key in record)) {
        throw new DataError(
          `${file}: row ${row} has no field "${key}"; fields: ${Object.keys(record).join(', ')}`,
          row,
        );
      }
      const field = record[key];
      if (field !== null && typeof field === 'object')
        throw new DataError(`${file}: row ${row}: "${key}" must be a string or a number`, row);
    }
    const asText = (v: unknown) => (v === null || v === undefined ? '' : String(v));
    out.push({ text: asText(record[options.text]), label: asText(record[options.label]), row });
  };
  for await (const text of decodedChunks(file, (e) => (encoding = e))) {
    pending += text;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      take(pending.slice(0, newline).replace(/\r$/, ''));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  }
  if (pending) take(pending);
  return encoding;
}
