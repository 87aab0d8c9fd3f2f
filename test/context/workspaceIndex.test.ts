// Tests for the workspace index and the context it gives completions: retrieval finds a planted duplicate and
// skips the current file, the index follows edits and deletions, definitions are found across files, and
// files the corpus rules exclude (secrets, gitignored) never reach the index.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { changedLines } from '../../server/src/context/recentEdits';
import { WorkspaceIndex, definitionsIn } from '../../server/src/context/workspaceIndex';
import { WorkspaceIndexer } from '../../server/src/context/workspaceIndexer';

const planted = [
  'export function reconcileLedgerEntries(ledger: Ledger, entries: Entry[]) {',
  '  const balanced = entries.filter((entry) => entry.amount !== 0);',
  '  for (const entry of balanced) ledger.post(entry.account, entry.amount);',
  '  return ledger.closingBalance();',
  '}',
].join('\n');

const filler = (name: string) =>
  Array.from({ length: 30 }, (_, i) => `export const ${name}${i} = compute${name}(${i}, 'value ${i}');`).join('\n');

describe('workspace index', () => {
  test('retrieval returns the window holding a planted duplicate, never from the current file', () => {
    const index = new WorkspaceIndex();
    index.setFile('/w/a.ts', 'a.ts', filler('alpha'));
    index.setFile('/w/b.ts', 'b.ts', `${filler('beta')}\n${planted}\n${filler('gamma')}`);
    index.setFile('/w/current.ts', 'current.ts', planted);
    const hits = index.retrieve(planted.split('\n').slice(0, 3).join('\n'), { excludeKey: '/w/current.ts' });
    assert.ok(hits.length > 0);
    assert.equal(hits[0].path, 'b.ts');
    assert.ok(hits[0].text.includes('reconcileLedgerEntries'), hits[0].text);
    assert.ok(hits.every((h) => h.key !== '/w/current.ts'));
  });

  test('follows edits and deletions of single files', () => {
    const index = new WorkspaceIndex();
    index.setFile('/w/a.ts', 'a.ts', filler('alpha'));
    index.setFile('/w/b.ts', 'b.ts', planted);
    assert.equal(index.retrieve('reconcileLedgerEntries closingBalance')[0]?.path, 'b.ts');
    index.setFile('/w/b.ts', 'b.ts', filler('beta'));
    assert.deepEqual(index.retrieve('reconcileLedgerEntries closingBalance'), []);
    index.setFile('/w/a.ts', 'a.ts', planted);
    assert.equal(index.retrieve('reconcileLedgerEntries closingBalance')[0]?.path, 'a.ts');
    index.removeFile('/w/a.ts');
    assert.deepEqual(index.retrieve('reconcileLedgerEntries closingBalance'), []);
    assert.equal(index.definitions(['reconcileLedgerEntries']).length, 0);
    assert.equal(index.fileCount, 1);
  });

  test('finds where names are defined, and keeps within its size bound', () => {
    const index = new WorkspaceIndex({ maxChars: planted.length + 10 });
    assert.ok(index.setFile('/w/b.ts', 'b.ts', planted));
    assert.equal(index.setFile('/w/c.ts', 'c.ts', filler('gamma')), false);
    const [definition] = index.definitions(['reconcileLedgerEntries']);
    assert.equal(definition.path, 'b.ts');
    assert.equal(definition.line, 0);
    assert.ok(definition.text.includes('closingBalance'));
    assert.deepEqual(
      definitionsIn('class Ledger {\n  post(account: string) {\n  }\n}\nconst x = 1;').map((d) => d.name),
      ['Ledger', 'post'],
    );
  });

  test('records the lines an edit changed', () => {
    assert.deepEqual(changedLines('a\nb\nc\n', 'a\nbX\nc\n'), { startLine: 1, endLine: 1 });
    assert.equal(changedLines('same', 'same'), undefined);
  });
});

describe('workspace indexer', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-index-'));
    fs.mkdirSync(path.join(root, 'src'));
    fs.mkdirSync(path.join(root, 'ignored'));
    fs.writeFileSync(path.join(root, '.gitignore'), 'ignored/\n');
    fs.writeFileSync(path.join(root, 'src', 'ledger.ts'), planted);
    fs.writeFileSync(path.join(root, 'src', 'other.ts'), filler('alpha'));
    fs.writeFileSync(path.join(root, 'ignored', 'hidden.ts'), 'export function ignoredMarkerFunction() {}\n');
    fs.writeFileSync(
      path.join(root, 'src', 'keys.ts'),
      `export const secretMarker = 'x';\nconst key = \`-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\`;\n`,
    );
    fs.writeFileSync(path.join(root, '.env'), 'envMarkerToken=abc\n');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('indexes in the background under the corpus rules, and follows documents and file events', async () => {
    const index = new WorkspaceIndex();
    const indexer = new WorkspaceIndexer([root], index, { rewalkDelayMs: 10 });
    await indexer.start();
    const keys = [...index.keys()].map((k) => path.relative(root, k)).sort();
    assert.deepEqual(keys, ['src/ledger.ts', 'src/other.ts']);
    // An open document that is gitignored, or that holds a secret, stays out even when edited.
    indexer.documentChanged(path.join(root, 'ignored', 'hidden.ts'), 'export function ignoredMarkerFunction() {}\n');
    indexer.documentChanged(path.join(root, 'src', 'other.ts'), 'const key = "-----BEGIN RSA PRIVATE KEY-----";\n');
    assert.equal(index.has(path.join(root, 'ignored', 'hidden.ts')), false);
    assert.equal(index.has(path.join(root, 'src', 'other.ts')), false);
    indexer.documentChanged(path.join(root, 'src', 'other.ts'), filler('delta'));
    assert.ok(index.textOf(path.join(root, 'src', 'other.ts'))?.includes('delta'));
    // Deletion, then a new file found by the next walk.
    await indexer.fileEvent(path.join(root, 'src', 'ledger.ts'), 'deleted');
    assert.equal(index.has(path.join(root, 'src', 'ledger.ts')), false);
    fs.writeFileSync(path.join(root, 'src', 'fresh.ts'), planted);
    await indexer.fileEvent(path.join(root, 'src', 'fresh.ts'), 'created');
    for (let i = 0; i < 200 && !index.has(path.join(root, 'src', 'fresh.ts')); i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    assert.ok(index.has(path.join(root, 'src', 'fresh.ts')));
    indexer.dispose();
  });
});
