// Tests for prompts with workspace context: they never exceed the budget, the context block is byte-identical
// between keystrokes that stay in one window of lines (so the KV cache is reused), and text from excluded
// (secret or gitignored) files never appears in a prompt.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPrompt } from '../../server/src/completion/prompt';
import { renderContext } from '../../server/src/context/renderContext';
import { WorkspaceContext } from '../../server/src/context/workspaceContext';
import { WorkspaceIndex } from '../../server/src/context/workspaceIndex';
import { WorkspaceIndexer } from '../../server/src/context/workspaceIndexer';

/** One token per character; FIM and file-separator tokens only when asked for. */
const tokenizer = (special: string[] = []) => {
  const ids = new Map(special.map((s, i) => [s, 1000 + i]));
  return {
    encode: (text: string) => {
      const out: number[] = [];
      let i = 0;
      while (i < text.length) {
        const hit = special.find((s) => text.startsWith(s, i));
        if (hit) {
          out.push(ids.get(hit)!);
          i += hit.length;
        } else out.push(text.charCodeAt(i++) % 1000);
      }
      return out;
    },
    tokenId: (token: string) => ids.get(token),
  };
};

const library = Array.from(
  { length: 60 },
  (_, i) => `export function helper${i}(value: number): number {\n  return value * ${i} + offsetFor(${i});\n}`,
).join('\n');

function typedDocument(lines: number): string {
  return Array.from({ length: lines }, (_, i) => `const result${i} = helper${i}(input${i});`).join('\n');
}

describe('prompts with workspace context', () => {
  const index = new WorkspaceIndex();
  index.setFile('/w/lib.ts', 'lib.ts', library);
  index.setFile('/w/util.ts', 'util.ts', 'export function offsetFor(n: number) {\n  return n * 2;\n}\n');

  test('never exceed the budget, with or without FIM and separator tokens', () => {
    const context = new WorkspaceContext(index);
    const styles = [tokenizer(), tokenizer(['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|file_sep|>'])];
    const text = typedDocument(80);
    for (const [s, tok] of styles.entries()) {
      for (const budget of [24, 60, 200, 900]) {
        for (let offset = 0; offset <= text.length; offset += 97) {
          const snippets = context.snippetsFor({ key: '/w/current.ts', text, offset });
          const rendered = renderContext(snippets, tok, Math.floor(budget * 0.4), {
            lineComment: '//',
            currentPath: 'current.ts',
          });
          assert.ok(rendered.ids.length <= Math.floor(budget * 0.4));
          const prompt = buildPrompt(tok, text.slice(0, offset), text.slice(offset), {
            budget,
            documentStartId: 0,
            fillInTheMiddle: s === 1,
            context: { ids: rendered.ids, beforeFimPrefix: rendered.style === 'fileSeparator' },
            suffixBudget: 32,
          });
          assert.ok(prompt.ids.length <= budget, `${prompt.ids.length} > ${budget} at ${offset} (style ${s})`);
        }
      }
    }
  });

  test('the context block is byte-identical between keystrokes within a window of lines', () => {
    const context = new WorkspaceContext(index);
    const tok = tokenizer();
    const base = typedDocument(13);
    const blocks: { line: number; text: string; prefixIds: number[] }[] = [];
    let text = `${base}\nconst next = helper`;
    for (const typed of [
      '4',
      '2(',
      'in',
      'put',
      ');\nconst more = help',
      'er1',
      '(x);\n',
      'const z = 1;\n'.repeat(8),
    ]) {
      text += typed;
      const snippets = context.snippetsFor({ key: '/w/current.ts', text, offset: text.length });
      const rendered = renderContext(snippets, tok, 120, { lineComment: '//', currentPath: 'current.ts' });
      const prompt = buildPrompt(tok, text, '', {
        budget: 400,
        documentStartId: 0,
        context: { ids: rendered.ids, beforeFimPrefix: false },
      });
      assert.deepEqual(prompt.ids.slice(1, 1 + rendered.ids.length), rendered.ids);
      blocks.push({ line: text.split('\n').length - 1, text: rendered.text, prefixIds: prompt.ids });
    }
    assert.ok(blocks[0].text.includes('helper'), 'context was found');
    for (let i = 1; i < blocks.length; i++) {
      if (Math.floor(blocks[i].line / 10) === Math.floor(blocks[0].line / 10))
        assert.equal(blocks[i].text, blocks[0].text, `keystroke ${i} changed the context`);
    }
    assert.ok(
      blocks.some((b) => Math.floor(b.line / 10) !== Math.floor(blocks[0].line / 10)),
      'the test crosses a window boundary',
    );
  });
});

describe('excluded files', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-context-'));
    fs.mkdirSync(path.join(root, 'src'));
    fs.mkdirSync(path.join(root, 'private'));
    fs.writeFileSync(path.join(root, '.gitignore'), 'private/\n');
    fs.writeFileSync(
      path.join(root, 'private', 'ledgerSecrets.ts'),
      'export function reconcileMarker(ledger: Ledger) {\n  return ledger.ignoredMarker;\n}\n',
    );
    fs.writeFileSync(
      path.join(root, 'src', 'keys.ts'),
      'export function reconcileMarker2(ledger: Ledger) {\n  return "-----BEGIN OPENSSH PRIVATE KEY-----";\n}\n',
    );
    fs.writeFileSync(path.join(root, '.env'), 'reconcileMarker3=ledger\n');
    fs.writeFileSync(path.join(root, 'src', 'public.ts'), 'export function visibleHelper(ledger: Ledger) {}\n');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('never appear in a prompt, even when open and edited', async () => {
    const index = new WorkspaceIndex();
    const indexer = new WorkspaceIndexer([root], index);
    await indexer.start();
    indexer.documentChanged(
      path.join(root, 'private', 'ledgerSecrets.ts'),
      'export function reconcileMarker(ledger: Ledger) {}\n',
    );
    const context = new WorkspaceContext(index);
    const text =
      'import { reconcileMarker, reconcileMarker2 } from "../private/ledgerSecrets";\n' +
      'const ledger = reconcileMarker(ledger) + reconcileMarker2(ledger) + reconcileMarker3 + visibleHelper(ledger);\n';
    const snippets = context.snippetsFor({ key: path.join(root, 'src', 'main.ts'), text, offset: text.length });
    const rendered = renderContext(snippets, tokenizer(), 10_000, { lineComment: '//', currentPath: 'src/main.ts' });
    assert.ok(rendered.text.includes('visibleHelper'), rendered.text);
    for (const marker of ['ignoredMarker', 'PRIVATE KEY', 'reconcileMarker3=', 'export function reconcileMarker'])
      assert.ok(!rendered.text.includes(marker), `${marker} leaked into the prompt`);
    indexer.dispose();
  });
});
