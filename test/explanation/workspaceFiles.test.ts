// Tests for the texts explanations are grounded in: paths shown relative to the workspace folder, open documents
// (with unsaved text) taking the place of their files, and workspace files collected without secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { WorkspaceFiles, filePath } from '../../server/src/explanation/workspaceFiles';

test('display paths, open documents first, and no secrets', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-workspace-'));
  try {
    fs.mkdirSync(path.join(root, 'src'));
    fs.writeFileSync(path.join(root, 'src', 'a.ts'), 'export const a = 1;\n');
    fs.writeFileSync(path.join(root, 'src', 'b.ts'), 'export const b = 2;\n');
    fs.writeFileSync(path.join(root, '.env'), 'TOKEN=abc\n');
    const files = new WorkspaceFiles([root]);
    const uri = pathToFileURL(path.join(root, 'src', 'a.ts')).href;
    assert.equal(files.displayPath(uri), 'src/a.ts');
    assert.equal(files.displayPath('untitled:Untitled-1'), 'untitled:Untitled-1');
    const sources = await files.sources([{ uri, getText: () => 'export const a = 42; // unsaved\n' }]);
    assert.deepEqual(sources.map((s) => s.path).sort(), ['src/a.ts', 'src/b.ts']);
    assert.match(sources.find((s) => s.path === 'src/a.ts')!.text, /unsaved/);
    assert.equal(filePath(uri), path.join(root, 'src', 'a.ts'));
    assert.equal(filePath('https://example.com/a.ts'), undefined);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
