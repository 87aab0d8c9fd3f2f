// Integration tests of modelwright/chat through the spawned server (what the editor's model picker and the
// @modelwright participant's questions use): a chat model's reply streams as partial results that add up to the
// result, a model without a chat template and malformed conversations are refused with InvalidParams.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCodes, type ResponseError } from 'vscode-languageserver-protocol';
import { Chat, type ChatTurn, chatLimits } from '../../server/src/protocol';
import { ServerHarness, modelDirectories } from './serverHarness';
import { makeParrotModel } from './testModels';

const CHAT_TEMPLATE =
  '{% for message in messages %}<|{{ message.role }}|>\n{{ message.content }}\n{% endfor %}' +
  '{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

describe('modelwright/chat', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'));
    const chatty = path.join(dirs.models, 'chatty');
    // New lines: the streamer passes text on at line ends, so each token is a chunk.
    await makeParrotModel(chatty, { character: '\n' });
    const file = path.join(chatty, 'tokenizer_config.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), chat_template: CHAT_TEMPLATE }),
    );
    server = await ServerHarness.start({ modelsDirectory: dirs.models, bundledModelsDirectory: dirs.bundled });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    dirs?.remove();
  });

  test('a chat model replies in streamed chunks that add up to the result', async () => {
    const chunks: string[] = [];
    const partialResultToken = 'chat-partial-1';
    server.connection.onProgress(Chat.chunkType, partialResultToken, (chunk) => {
      chunks.push(chunk.text);
    });
    const result = await server.connection.sendRequest(Chat.type, {
      model: 'chatty',
      messages: [
        { role: 'system', content: 'You explain code.' },
        { role: 'user', content: 'What is a closure?' },
      ],
      maxTokens: 6,
      partialResultToken,
    });
    assert.equal(result.model, 'chatty');
    assert.match(result.text, /^\n+$/, `the parrot model says only new lines (got ${JSON.stringify(result.text)})`);
    assert.ok(chunks.length >= 2, `streamed in pieces (${chunks.length})`);
    assert.equal(chunks.join(''), result.text);
  });

  test('a model without a chat template, an unknown model and malformed conversations are InvalidParams', async () => {
    const refuse = async (params: unknown, pattern: RegExp) => {
      const error = (await server.connection.sendRequest(Chat.method, params).then(
        () => assert.fail(`accepted ${JSON.stringify(params).slice(0, 80)}`),
        (e: ResponseError<void>) => e,
      )) as ResponseError<void>;
      assert.equal(error.code, ErrorCodes.InvalidParams, error.message);
      assert.match(error.message, pattern);
    };
    const question: ChatTurn[] = [{ role: 'user', content: 'hi' }];
    await refuse({ model: 'default', messages: question }, /no chat template/);
    await refuse({ model: 'missing', messages: question }, /missing/);
    await refuse({ model: 'chatty', messages: [] }, /messages must be a list/);
    await refuse({ model: 'chatty', messages: 'hi' }, /messages must be a list/);
    await refuse({ model: 'chatty', messages: [{ role: 'robot', content: 'hi' }] }, /messages\[0\]\.role/);
    await refuse({ model: 'chatty', messages: [{ role: 'user', content: 7 }] }, /messages\[0\]\.content/);
    await refuse({ model: 'chatty', messages: [...question, { role: 'assistant', content: 'x' }] }, /last message/);
    await refuse({ model: 'chatty', messages: question, maxTokens: 'many' }, /maxTokens/);
    await refuse({ model: 7, messages: question }, /model must be/);
    const many = Array.from({ length: chatLimits.maxTurns + 1 }, () => ({ role: 'user', content: 'a' }));
    await refuse({ model: 'chatty', messages: many }, /at most/);
    await refuse(
      { model: 'chatty', messages: [{ role: 'user', content: 'a'.repeat(chatLimits.maxCharacters + 1) }] },
      /characters/,
    );
    // The server still answers afterwards.
    const result = await server.connection.sendRequest(Chat.type, {
      model: 'chatty',
      messages: question,
      maxTokens: 2,
    });
    assert.match(result.text, /^\n*$/);
  });
});
