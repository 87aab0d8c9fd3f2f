// Tests for the explainer: chunks stream in order (grounding, surprisal, the model's text) and add up to the final
// text; the code model's text is a comment continuation labelled as such; a chat model (a tiny folder with a
// chat template, loaded by transformers.js) writes the last part; cancellation ends generation early.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { explain, type ExplainTarget } from '../../server/src/explanation/explainer';
import { lineSurprisal } from '../../server/src/explanation/surprisal';
import { type ChatModel, hasChatTemplate, loadChatModel } from '../../server/src/runtime/chatModel';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { makeTrainedModel } from '../server/testModels';

const CHAT_TEMPLATE =
  "{% for message in messages %}<|endoftext|>{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";

describe('explainer', () => {
  let root: string;
  let model: LanguageModel;
  let chat: ChatModel;
  const text = 'export function addOne(value: number): number {\n  return value + 1;\n}\n\nconst two = addOne(1);\n';
  const target: ExplainTarget = {
    path: 'src/math.ts',
    languageId: 'typescript',
    text,
    startLine: 4,
    endLine: 4,
    code: 'const two = addOne(1);',
  };
  const sources = [
    { path: 'src/math.ts', text },
    { path: 'src/use.ts', text: 'addOne(41);\n' },
  ];

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-explainer-'));
    await makeTrainedModel(path.join(root, 'trained'));
    model = await loadLanguageModel(path.join(root, 'trained'), { intraOpThreads: 1 });
    const chatFolder = await makeModelFolder({
      parentDir: root,
      seed: 5,
      weightScale: 10,
      config: { contextLength: 512 },
    });
    const configFile = path.join(chatFolder.dir, 'tokenizer_config.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), chat_template: CHAT_TEMPLATE }),
    );
    assert.ok(hasChatTemplate(chatFolder.dir));
    chat = await loadChatModel(chatFolder.dir);
  });
  after(async () => {
    await Promise.all([model?.dispose(), chat?.dispose()]);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test("streams grounding, surprisal and the code model's comment; the chunks add up to the text", async () => {
    const chunks: string[] = [];
    const result = await explain(
      target,
      {
        writer: { kind: 'code', name: 'trained', languageModel: model },
        sources,
        statistics: () => lineSurprisal(model, text),
        surprisalModel: 'trained',
      },
      { maxTokens: 40, onChunk: (chunk) => chunks.push(chunk.text) },
    );
    assert.equal(chunks.join(''), result.text);
    assert.ok(chunks.length >= 4);
    assert.equal(result.model, 'trained');
    const grounding = result.text.indexOf('`addOne`: defined in src/math.ts:1');
    const surprisal = result.text.indexOf('How usual these lines are');
    const comment = result.text.indexOf('Comment continued by the code model');
    assert.ok(grounding > 0 && surprisal > grounding && comment > surprisal, result.text);
    assert.match(result.text, /not reliable English/);
    assert.deepEqual(
      result.lines.map((l) => l.line),
      [4],
    );
    assert.ok(result.lines[0].bitsPerToken > 0);
  });

  test('a chat model writes the explanation (streamed), and cancellation ends it early', async () => {
    const chunks: string[] = [];
    const result = await explain(
      target,
      { writer: { kind: 'chat', name: 'chatty', chatModel: chat }, sources },
      { maxTokens: 24, onChunk: (c) => chunks.push(c.text) },
    );
    assert.equal(chunks.join(''), result.text);
    assert.equal(result.model, 'chatty');
    assert.match(result.text, /\*\*Explanation\*\* \(chatty\)\n\n.+/s);
    assert.deepEqual(result.lines, [], 'no surprisal without a completion model');

    const controller = new AbortController();
    let pieces = 0;
    const written = await chat.chat([{ role: 'user', content: 'hello' }], {
      maxTokens: 200,
      signal: controller.signal,
      onText: () => {
        if (++pieces === 3) controller.abort();
      },
    });
    assert.ok(pieces < 20, `${pieces} pieces after cancelling at 3`);
    assert.equal(typeof written, 'string');
  });

  test('a chat template in chat_template.jinja (as newer hub repos ship it) writes what the config template writes', async () => {
    const jinjaFolder = await makeModelFolder({
      parentDir: root,
      seed: 5,
      weightScale: 10,
      config: { contextLength: 512 },
    });
    assert.equal(hasChatTemplate(jinjaFolder.dir), false);
    fs.writeFileSync(path.join(jinjaFolder.dir, 'chat_template.jinja'), CHAT_TEMPLATE);
    assert.ok(hasChatTemplate(jinjaFolder.dir));
    const fromJinja = await loadChatModel(jinjaFolder.dir);
    try {
      const messages = [{ role: 'user' as const, content: 'what does this do?' }];
      const expected = await chat.chat(messages, { maxTokens: 12 });
      assert.equal(await fromJinja.chat(messages, { maxTokens: 12 }), expected);
      assert.ok(expected.length > 0);
    } finally {
      await fromJinja.dispose();
    }
  });

  test('without a model only the grounding is given', async () => {
    const result = await explain(target, { sources }, { maxTokens: 10 });
    assert.equal(result.model, '');
    assert.match(result.text, /Where its names come from/);
  });
});
