// Tests for the workspace grounding of explanations: identifiers of a piece of code, definition patterns in a few
// languages, definitions and usages across files (the explained lines excluded), ranking, and the description.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeGrounding, groundSymbols, identifiersIn, isDefinition } from '../../server/src/explanation/grounding';

test('identifiersIn keeps names in order, without keywords and one-letter names', () => {
  assert.deepEqual(identifiersIn('const total = computeSum(items, i) + offset; return total;'), [
    'total',
    'computeSum',
    'items',
    'offset',
  ]);
});

test('isDefinition recognizes common definition forms', () => {
  assert.ok(isDefinition('export function computeSum(items: number[]) {', 'computeSum'));
  assert.ok(isDefinition('export class Pipeline {', 'Pipeline'));
  assert.ok(isDefinition('  private readonly cache = new Map();', 'cache') === false);
  assert.ok(isDefinition('const limit = 10;', 'limit'));
  assert.ok(isDefinition('def parse_args(argv):', 'parse_args'));
  assert.ok(isDefinition('fn main() {', 'main'));
  assert.ok(isDefinition('  async complete(model: Model, request: Request): Promise<Outcome> {', 'complete'));
  assert.ok(isDefinition('  readonly name: string;', 'name'));
  assert.ok(!isDefinition('  const x = computeSum(items);', 'computeSum'));
});

test('groundSymbols finds definitions and usages in other files and ranks defined names first', () => {
  const sources = [
    {
      path: 'src/sum.ts',
      text: 'export function computeSum(items: number[]): number {\n  return items.reduce((a, b) => a + b, 0);\n}\n',
    },
    {
      path: 'src/main.ts',
      text: 'import { computeSum } from "./sum";\nconst total = computeSum([1, 2]);\nconsole.log(total);\n',
    },
    { path: 'src/other.ts', text: 'const shown = computeSum(values);\n' },
  ];
  const symbols = groundSymbols(identifiersIn('const total = computeSum([1, 2]);'), sources, {
    exclude: { path: 'src/main.ts', startLine: 1, endLine: 1 },
  });
  assert.equal(symbols[0].name, 'computeSum');
  assert.deepEqual(
    symbols[0].definitions.map((d) => `${d.path}:${d.line}`),
    ['src/sum.ts:0'],
  );
  assert.equal(symbols[0].usageCount, 2, 'the import line and other.ts; the explained line itself is excluded');
  const total = symbols.find((s) => s.name === 'total')!;
  assert.equal(total.usageCount, 1);
  assert.equal(groundSymbols(['total', 'computeSum'], sources, { focus: 'total' })[0].name, 'total');
  const [line] = describeGrounding(symbols);
  assert.match(line, /^`computeSum`: defined in src\/sum\.ts:1 \(`export function computeSum/);
  assert.match(line, /used 2× elsewhere \(src\/main\.ts:1, src\/other\.ts:1\)/);
});
