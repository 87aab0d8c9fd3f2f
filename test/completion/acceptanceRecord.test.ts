// Tests for the local acceptance record: answers shown, accepted whole through the item's command, accepted in
// part when a change inserts a start of a shown suggestion at its position, and the figures kept in a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AcceptanceRecord } from '../../server/src/completion/acceptanceRecord';
import { insertion } from '../../server/src/features/inlineCompletion';

test('counts shown, accepted and partially accepted answers per model, and keeps them', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-acceptance-')), '.acceptance.json');
  const record = new AcceptanceRecord(file);
  const first = record.shown('tiny', 'file:///a.ts', 10, ['return width * height;', 'return 0;']);
  record.shown('tiny', 'file:///a.ts', 40, ['foo()']);
  const third = record.shown('other', 'file:///b.ts', 5, ['const x = 1;']);
  record.documentChanged('file:///a.ts', 10, 'r'); // a keystroke, not an acceptance
  record.documentChanged('file:///a.ts', 10, 'return '); // word-by-word acceptance
  record.accepted(third);
  record.accepted(third); // counted once
  assert.deepEqual(record.figures(), {
    tiny: { shown: 2, accepted: 0, partiallyAccepted: 1, acceptanceRate: 0 },
    other: { shown: 1, accepted: 1, partiallyAccepted: 0, acceptanceRate: 1 },
  });
  record.accepted(first); // accepted whole after all: no longer partial
  assert.deepEqual(record.figures().tiny, { shown: 2, accepted: 1, partiallyAccepted: 0, acceptanceRate: 0.5 });
  record.save();
  assert.deepEqual(new AcceptanceRecord(file).figures(), record.figures());
});

test('finds the text a change inserted', () => {
  assert.deepEqual(insertion('ab\ncd', 'ab return\ncd'), { offset: 2, text: ' return' });
  assert.equal(insertion('abc', 'ab'), undefined);
});
