// Checks of request parameters that a client might send malformed or out of range: URIs, positions and ranges
// (clamped to the document like editors do, or rejected with InvalidParams when they make no sense).
import type { Position, Range } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { invalidParams } from './errors';

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;

export function requireObject(params: unknown, method: string): Record<string, unknown> {
  if (!params || typeof params !== 'object' || Array.isArray(params))
    throw invalidParams(`${method}: params must be an object`);
  return params as Record<string, unknown>;
}

export function requireUri(params: Record<string, unknown>, method: string): string {
  const document = params.textDocument as { uri?: unknown } | undefined;
  if (!document || typeof document.uri !== 'string' || document.uri === '')
    throw invalidParams(`${method}: textDocument.uri is missing`);
  return document.uri;
}

export function requirePosition(value: unknown, name: string, document: TextDocument): Position {
  const position = value as { line?: unknown; character?: unknown } | undefined;
  if (!position || !isCount(position.line) || !isCount(position.character)) {
    throw invalidParams(`${name} must be {line, character} with non-negative integers`);
  }
  if (position.line >= document.lineCount) {
    throw invalidParams(`${name} line ${position.line} is outside the document (${document.lineCount} lines)`);
  }
  // A character past the end of the line means the end of the line (as in LSP).
  return document.positionAt(document.offsetAt({ line: position.line, character: position.character }));
}

export function requireRange(value: unknown, name: string, document: TextDocument): Range {
  const range = value as { start?: unknown; end?: unknown } | undefined;
  if (!range || typeof range !== 'object') throw invalidParams(`${name} must be {start, end}`);
  const start = requirePosition(range.start, `${name}.start`, document);
  const end = requirePosition(range.end, `${name}.end`, document);
  if (document.offsetAt(end) < document.offsetAt(start)) throw invalidParams(`${name} ends before it starts`);
  return { start, end };
}
