// Tests of reading labelled data: malformed CSV and JSONL rows, a missing column, one class only, non-UTF-8 bytes
// and a file over the memory budget give errors naming the row (or the limit), and training on such a file leaves
// no output folder behind; empty and duplicate rows are skipped and reported, UTF-16 files are read.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { stratifiedSplit } from '../../server/src/classify/classifierData';
import { readLabelledData } from '../../server/src/classify/labelledData';
import { trainClassifier } from '../../server/src/classify/trainClassifier';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-data-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const write = (name: string, content: string | Buffer) => {
  const file = path.join(root, name);
  fs.writeFileSync(file, content);
  return file;
};
const columns = { text: 'text', label: 'label' };

describe('labelled data', () => {
  const cases: [string, string | Buffer, RegExp][] = [
    ['unclosed.csv', 'text,label\nok one,a\nok two,b\n"never closed,a\nlast,b\n', /row \d+ is malformed/],
    ['columns.csv', 'text,label\nok one,a\nsurplus,b,c\nok,b\n', /row 3 is malformed/],
    ['missing.csv', 'message,label\nhello,a\n', /no column "text" in the header \(row 1\); columns: message, label/],
    ['bad.jsonl', '{"text":"a","label":"x"}\n{"text":"b","label":"y"}\n{"text": oops}\n', /row 3 is not valid JSON/],
    ['field.jsonl', '{"text":"a","label":"x"}\n{"text":"b"}\n', /row 2 has no field "label"/],
    ['array.jsonl', '{"text":"a","label":"x"}\n[1,2]\n', /row 2 is not a JSON object/],
    ['one.csv', 'text,label\na,x\nb,x\nc,x\n', /one class only \("x" in all 3 rows\)/],
    [
      'latin1.csv',
      Buffer.concat([Buffer.from('text,label\nfine,a\nalso fine,b\ncaf'), Buffer.from([0xe9]), Buffer.from(',a\n')]),
      /row 4 is not valid UTF-8/,
    ],
  ];
  for (const [name, content, expected] of cases) {
    test(`${name}: ${expected.source}`, async () => {
      const file = write(name, content);
      await assert.rejects(readLabelledData(file, columns), expected);
      const out = path.join(root, `model-${name}`);
      await assert.rejects(trainClassifier({ data: file, ...columns, out }), expected);
      assert.ok(!fs.existsSync(out), 'nothing is written for bad data');
      assert.deepEqual(
        fs.readdirSync(root).filter((f) => f.includes('.partial-')),
        [],
      );
    });
  }

  test('a file over the memory budget is refused before it is read', async () => {
    const file = write('big.csv', `text,label\n${'some text,a\n'.repeat(2000)}`);
    await assert.rejects(readLabelledData(file, { ...columns, maxBytes: 10_000 }), /over the memory budget of 0\.0 MB/);
  });

  test('empty and duplicate rows are skipped and reported; classes are counted; UTF-16 is read', async () => {
    const text = 'text,label\nalpha,x\n,y\nbeta,\nalpha,y\ngamma,y\n"multi\nline",x\n';
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    for (const [name, content, encoding] of [
      ['dupes.csv', text, 'utf-8'],
      ['dupes16.csv', utf16, 'utf-16le'],
    ] as const) {
      const report = await readLabelledData(write(name, content), columns);
      assert.equal(report.encoding, encoding);
      assert.deepEqual(report.emptyRows, [3, 4]);
      assert.deepEqual(report.duplicateRows, [5]);
      assert.equal(report.conflictingDuplicates, 1);
      assert.deepEqual(report.classes, [
        { label: 'x', count: 2 },
        { label: 'y', count: 1 },
      ]);
      assert.equal(report.rows.at(-1)?.text, 'multi\nline');
    }
  });

  test('the split is stratified and does not depend on the order of the rows', () => {
    const rows = Array.from({ length: 100 }, (_, i) => ({
      text: `row ${i}`,
      label: i % 4 === 0 ? 'rare' : 'common',
      row: i + 2,
    }));
    const a = stratifiedSplit(rows, 0.2);
    const b = stratifiedSplit([...rows].reverse(), 0.2);
    assert.deepEqual(new Set(a.validation.map((r) => r.text)), new Set(b.validation.map((r) => r.text)));
    assert.equal(a.validation.filter((r) => r.label === 'rare').length, 5);
    assert.equal(a.validation.filter((r) => r.label === 'common').length, 15);
  });
});
