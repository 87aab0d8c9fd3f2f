// Protocol-buffer text format, the subset Triton model configurations use: writing a config from plain objects
// and parsing one back (messages, repeated fields as lists, numbers, strings, enum identifiers, comments).

export type PbValue = string | number | boolean | PbEnum | PbMessage | PbValue[];
export interface PbMessage {
  [field: string]: PbValue;
}

/** An enum value, written bare (TYPE_INT64) rather than quoted. */
export class PbEnum {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

export function writePbtxt(message: PbMessage, indent = ''): string {
  let out = '';
  for (const [field, value] of Object.entries(message)) {
    if (Array.isArray(value) && value.every((v) => isMessage(v))) {
      out += `${indent}${field} [\n`;
      out += value.map((v) => `${indent}  {\n${writePbtxt(v as PbMessage, `${indent}    `)}${indent}  }`).join(',\n');
      out += `\n${indent}]\n`;
    } else if (Array.isArray(value)) {
      out += `${indent}${field}: [ ${value.map(scalar).join(', ')} ]\n`;
    } else if (isMessage(value)) {
      out += `${indent}${field} {\n${writePbtxt(value, `${indent}  `)}${indent}}\n`;
    } else {
      out += `${indent}${field}: ${scalar(value)}\n`;
    }
  }
  return out;
}

function isMessage(value: PbValue): value is PbMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof PbEnum);
}

function scalar(value: PbValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof PbEnum) return value.name;
  return String(value);
}

/**
 * Parses text format into fields; a field that appears more than once, or whose value is a [...] list, becomes an
 * array. Enum identifiers come back as PbEnum.
 */
export function parsePbtxt(text: string): PbMessage {
  const tokens = tokenize(text);
  let at = 0;
  const peek = () => tokens[at];
  const next = () => {
    if (at >= tokens.length) throw new Error('unexpected end of text');
    return tokens[at++];
  };
  const expect = (token: string) => {
    const got = next();
    if (got !== token) throw new Error(`expected "${token}", got "${got}"`);
  };

  const parseMessage = (end: string | undefined): PbMessage => {
    const message: PbMessage = {};
    const add = (field: string, value: PbValue, list: boolean) => {
      const existing = message[field];
      if (existing === undefined) message[field] = list ? (value as PbValue[]) : value;
      else if (Array.isArray(existing) && (list || !Array.isArray(value)))
        message[field] = list ? [...existing, ...(value as PbValue[])] : [...existing, value];
      else message[field] = [existing, value];
    };
    while (at < tokens.length && peek() !== end) {
      const field = next();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) throw new Error(`expected a field name, got "${field}"`);
      if (peek() === ':') next();
      if (peek() === '[') {
        next();
        const items: PbValue[] = [];
        while (peek() !== ']') {
          items.push(parseValue());
          if (peek() === ',') next();
        }
        expect(']');
        add(field, items, true);
      } else {
        add(field, parseValue(), false);
      }
      if (peek() === ',' || peek() === ';') next();
    }
    if (end !== undefined) expect(end);
    return message;
  };

  const parseValue = (): PbValue => {
    const token = next();
    if (token === '{') return parseMessage('}');
    if (token === '<') return parseMessage('>');
    if (token.startsWith('"') || token.startsWith("'"))
      return JSON.parse(token.startsWith("'") ? `"${token.slice(1, -1).replace(/"/g, '\\"')}"` : token);
    if (/^-?(\d|\.\d)/.test(token)) return Number(token);
    if (token === 'true' || token === 'false') return token === 'true';
    return new PbEnum(token);
  };

  return parseMessage(undefined);
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const pattern = /\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[{}[\]<>:,;]|[^\s{}[\]<>:,;"'#]+/g;
  let expected = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index !== expected)
      throw new Error(`unexpected character ${JSON.stringify(text[expected])} at offset ${expected}`);
    expected = match.index + match[0].length;
    const token = match[0];
    if (/^\s/.test(token) || token.startsWith('#')) continue;
    tokens.push(token);
  }
  if (expected !== text.length)
    throw new Error(`unexpected character ${JSON.stringify(text[expected])} at offset ${expected}`);
  return tokens;
}
