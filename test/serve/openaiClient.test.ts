// The OpenAI-compatible API driven by the official `openai` npm client over loopback: completions (n, seeds, stop,
// suffix/FIM, logprobs, echo), chat with the model's template, streaming with include_usage, the tokenizer routes,
// lm-evaluation-harness's local-completions scoring request, and a 400 in OpenAI's shape for every bad parameter.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import { loadChatTemplate } from '../../server/src/runtime/chatModel';
import { generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { logSoftmax } from '../../server/src/runtime/sampling';
import { type RunningServer, startServer } from '../../server/src/serve/httpServer';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { request } from './harness';

const PROMPT = 'export function countOfTotal(count: number, total: number): number {\n';
const CHAT_TEMPLATE =
  '{% for message in messages %}<|{{ message.role }}|>\n{{ message.content }}\n{% endfor %}' +
  '{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

/** Gives a model folder a chat template in tokenizer_config.json. */
function addChatTemplate(dir: string): void {
  const file = path.join(dir, 'tokenizer_config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...config, chat_template: CHAT_TEMPLATE }));
}

/** Renames the fill-in-the-middle tokens, so the tokenizer has none the server recognises. */
function removeFimTokens(dir: string): void {
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replaceAll('<|fim_', '<|nofim_'));
  }
}

/** log p(ids[i] | ids[..i]) for i ≥ 1, straight from the runtime's logits. */
async function directLogprobs(model: LanguageModel, ids: number[]): Promise<number[]> {
  const vocab = model.config.vocabSize;
  const logits = await model.run(ids, model.newCache(), { allPositions: true });
  const out: number[] = [];
  const row = new Float32Array(vocab);
  for (let i = 0; i + 1 < ids.length; i++) {
    logSoftmax(logits.subarray(i * vocab, (i + 1) * vocab), row);
    out.push(row[ids[i + 1]]);
  }
  return out;
}

/** The text of legacy token strings, "bytes:\xNN" pieces turned back into their bytes. */
function tokensText(tokens: readonly string[]): string {
  const bytes: number[] = [];
  for (const token of tokens) {
    if (token.startsWith('bytes:'))
      for (const hex of token.slice(6).split('\\x').slice(1)) bytes.push(Number.parseInt(hex, 16));
    else bytes.push(...new TextEncoder().encode(token));
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

async function expectBadRequest(call: Promise<unknown>, param: string | RegExp, what: string): Promise<void> {
  await assert.rejects(call, (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `${what}: ${String(e)}`);
    assert.equal(e.status, 400, what);
    assert.equal(e.type, 'invalid_request_error', what);
    assert.ok(e.message.length > 10, what);
    if (typeof param === 'string') assert.equal(e.param, param, `${what}: ${e.message}`);
    else assert.match(e.message, param, what);
    return true;
  });
}

describe('OpenAI API with the official client', () => {
  let chatFolder: ModelFolder;
  let plainFolder: ModelFolder;
  let model: LanguageModel;
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    chatFolder = await makeModelFolder({ seed: 41, weightScale: 10, config: { contextLength: 128 } });
    addChatTemplate(chatFolder.dir);
    plainFolder = await makeModelFolder({ seed: 42, weightScale: 10 });
    removeFimTokens(plainFolder.dir);
    model = await loadLanguageModel(chatFolder.dir, { intraOpThreads: 1 });
    server = await startServer({
      models: [
        { name: 'chat', dir: chatFolder.dir },
        { name: 'plain', dir: plainFolder.dir },
      ],
    });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await server?.close();
    await model?.dispose();
    chatFolder?.remove();
    plainFolder?.remove();
  });

  test('models.list gives each model with its context length', async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    assert.deepEqual(
      models.map((m) => m.id),
      ['chat', 'plain'],
    );
    const chat = models[0] as (typeof models)[0] & { max_model_len: number; context_length: number };
    assert.equal(chat.object, 'model');
    assert.equal(chat.max_model_len, chatFolder.config.contextLength);
    assert.equal(chat.context_length, chatFolder.config.contextLength);
    assert.equal((await client.models.retrieve('plain')).id, 'plain');
  });

  test('completions: greedy text equals the runtime; n choices; seeds repeat; unknown fields are ignored', async () => {
    const expected = await generate(model, PROMPT, { maxTokens: 8 });
    const result = await client.completions.create({
      model: 'chat',
      prompt: PROMPT,
      max_tokens: 8,
      temperature: 0,
      // Fields this server does not know are ignored, as OpenAI's clients and tools expect.
      ...({ metadata: { run: 'test' }, foo: 1 } as object),
    });
    assert.equal(result.object, 'text_completion');
    assert.equal(result.choices[0].text, expected.text);
    assert.equal(result.usage?.completion_tokens, 8);

    const sampled = { model: 'chat', prompt: PROMPT, max_tokens: 6, temperature: 1, n: 3, seed: 7 } as const;
    const a = await client.completions.create(sampled);
    const b = await client.completions.create(sampled);
    assert.deepEqual(
      a.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.deepEqual(
      a.choices.map((c) => c.text),
      b.choices.map((c) => c.text),
    );
    assert.equal(a.usage?.completion_tokens, 18);
    assert.equal(a.usage?.prompt_tokens, 3 * model.tokenizer.encode(PROMPT).length);

    const stop = expected.text.slice(2, 4);
    const stopped = await client.completions.create({
      model: 'chat',
      prompt: PROMPT,
      max_tokens: 8,
      temperature: 0,
      stop: [stop],
    });
    assert.equal(stopped.choices[0].text, expected.text.slice(0, expected.text.indexOf(stop)));
    assert.equal(stopped.choices[0].finish_reason, 'stop');
  });

  test("completions: logit_bias forces a token; logprobs are the model's own, top-k per token", async () => {
    const forced = model.tokenizer.encode('count')[0];
    const biased = await client.completions.create({
      model: 'chat',
      prompt: PROMPT,
      max_tokens: 3,
      temperature: 0,
      logit_bias: { [String(forced)]: 100 },
    });
    assert.equal(biased.choices[0].text, model.tokenizer.decode([forced, forced, forced]));

    const result = await client.completions.create({
      model: 'chat',
      prompt: PROMPT,
      max_tokens: 5,
      temperature: 0,
      logprobs: 3,
    });
    const logprobs = result.choices[0].logprobs!;
    assert.equal(logprobs.tokens!.length, 5);
    assert.equal(tokensText(logprobs.tokens!), result.choices[0].text);
    assert.equal(logprobs.text_offset![0], 0);
    for (let i = 1; i < 5; i++) assert.ok(logprobs.text_offset![i] >= logprobs.text_offset![i - 1]);
    const greedy = await generate(model, PROMPT, { maxTokens: 5 });
    const ids = [...model.tokenizer.encode(PROMPT), ...greedy.generatedIds];
    const direct = await directLogprobs(model, ids);
    const promptLength = model.tokenizer.encode(PROMPT).length;
    logprobs.token_logprobs!.forEach((lp, i) => {
      assert.ok(
        Math.abs(lp - direct[promptLength - 1 + i]) < 1e-4,
        `token ${i}: ${lp} vs ${direct[promptLength - 1 + i]}`,
      );
      const top = logprobs.top_logprobs![i];
      assert.equal(Object.keys(top).length, 3);
      assert.ok(Math.abs(Math.max(...Object.values(top)) - lp) < 1e-6, 'greedy: the chosen token is the most likely');
    });
  });

  test("lm-evaluation-harness local-completions: echo + logprobs scores equal the runtime's", async () => {
    const context = model.tokenizer.encode('export function ');
    const continuation = model.tokenizer.encode('countOfTotal(count: number)');
    const ids = [...context, ...continuation];
    const direct = await directLogprobs(model, ids);
    const expected = direct.slice(context.length - 1).reduce((a, b) => a + b, 0);

    // The request lm-evaluation-harness sends today: token ids, max_tokens 1, logprobs 1, echo; it sums
    // token_logprobs[ctxlen:-1] (the last entry is the generated token).
    const current = await client.completions.create({
      model: 'chat',
      prompt: [ids, ids],
      temperature: 0,
      max_tokens: 1,
      logprobs: 1,
      seed: 1234,
      echo: true,
    });
    assert.equal(current.choices.length, 2);
    for (const choice of current.choices) {
      const lp = choice.logprobs!;
      assert.equal(lp.token_logprobs!.length, ids.length + 1);
      assert.equal(lp.token_logprobs![0], null);
      assert.equal(lp.top_logprobs![0], null);
      const sum = (lp.token_logprobs!.slice(context.length, -1) as number[]).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - expected) < 1e-3, `${sum} vs ${expected}`);
      assert.ok(choice.text.startsWith(model.tokenizer.decode(ids)));
    }

    // The older shape: max_tokens 0, a text prompt.
    const text = 'export function countOfTotal(count: number)';
    const textIds = model.tokenizer.encode(text);
    const textExpected = (await directLogprobs(model, textIds)).reduce((a, b) => a + b, 0);
    const legacy = await client.completions.create({
      model: 'chat',
      prompt: text,
      max_tokens: 0,
      logprobs: 2,
      echo: true,
    });
    const lp = legacy.choices[0].logprobs!;
    assert.equal(legacy.choices[0].text, text);
    assert.equal(lp.tokens!.length, textIds.length);
    assert.equal(tokensText(lp.tokens!), text);
    const sum = (lp.token_logprobs!.slice(1) as number[]).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - textExpected) < 1e-3, `${sum} vs ${textExpected}`);
    assert.deepEqual(lp.text_offset!.slice(0, 3), [
      0,
      lp.tokens![0].length,
      lp.tokens![0].length + lp.tokens![1].length,
    ]);
    assert.equal(legacy.usage?.completion_tokens, 0);
    assert.equal(legacy.usage?.prompt_tokens, textIds.length);
  });

  test("suffix: fill-in-the-middle with the tokenizer's FIM tokens; 400 for a tokenizer without them", async () => {
    const prefix = 'function add(a: number, b: number) {\n  return ';
    const suffix = ';\n}\n';
    const token = (t: string) => model.tokenizer.tokenId(t)!;
    const fimIds = [
      token('<|fim_prefix|>'),
      ...model.tokenizer.encode(prefix),
      token('<|fim_suffix|>'),
      ...model.tokenizer.encode(suffix),
      token('<|fim_middle|>'),
    ];
    const expected = await generate(model, fimIds, { maxTokens: 6 });
    const result = await client.completions.create({
      model: 'chat',
      prompt: prefix,
      suffix,
      max_tokens: 6,
      temperature: 0,
    });
    assert.equal(result.choices[0].text, expected.text);
    assert.equal(result.usage?.prompt_tokens, fimIds.length);
    await expectBadRequest(
      client.completions.create({ model: 'plain', prompt: prefix, suffix, max_tokens: 6 }),
      'suffix',
      'suffix on a model without FIM tokens',
    );
  });

  test('streaming completions with include_usage: chunks add up, the last has choices [] and the usage', async () => {
    const expected = await generate(model, PROMPT, { maxTokens: 10 });
    const stream = await client.completions.create({
      model: 'chat',
      prompt: PROMPT,
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      logprobs: 1,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage?.completion_tokens, 10);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null && c.choices.length === 1));
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), expected.text);
    const tokens = chunks.flatMap((c) => c.choices[0]?.logprobs?.tokens ?? []);
    assert.equal(tokensText(tokens), expected.text);
    assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 1);
  });

  test('streaming with echo sends the prompt first; penalties change what is chosen', async () => {
    const stream = await client.completions.create({
      model: 'chat',
      prompt: PROMPT,
      max_tokens: 4,
      temperature: 0,
      echo: true,
      logprobs: 0,
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0].choices[0].text, PROMPT);
    assert.equal(chunks[0].choices[0].logprobs?.token_logprobs?.[0], null);
    const expected = await generate(model, PROMPT, { maxTokens: 4 });
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), PROMPT + expected.text);

    // A greedy model that repeats a token stops repeating it under a strong frequency penalty.
    const plain = await client.completions.create({ model: 'chat', prompt: 'x', max_tokens: 12, temperature: 0 });
    const penalized = await client.completions.create({
      model: 'chat',
      prompt: 'x',
      max_tokens: 12,
      temperature: 0,
      frequency_penalty: 2,
      presence_penalty: 2,
    });
    assert.notEqual(penalized.choices[0].text, plain.choices[0].text);
  });

  test("chat: the model's template, greedy text equals the runtime, streaming with include_usage", async () => {
    const messages = [
      { role: 'system' as const, content: 'You explain code.' },
      { role: 'user' as const, content: 'What does countOfTotal do?' },
    ];
    const template = (await loadChatTemplate(chatFolder.dir))!;
    const promptIds = model.tokenizer.encode(template.render(messages));
    const expected = await generate(model, promptIds, { maxTokens: 12 });

    const result = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 12, temperature: 0 });
    assert.equal(result.object, 'chat.completion');
    assert.equal(result.choices[0].message.role, 'assistant');
    assert.equal(result.choices[0].message.content, expected.text);
    assert.equal(result.usage?.prompt_tokens, promptIds.length);

    const withLogprobs = await client.chat.completions.create({
      model: 'chat',
      messages,
      max_completion_tokens: 4,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = withLogprobs.choices[0].logprobs!.content!;
    assert.equal(content.length, 4);
    assert.equal(
      new TextDecoder().decode(Uint8Array.from(content.flatMap((c) => c.bytes!))),
      withLogprobs.choices[0].message.content,
    );
    assert.ok(content.every((c) => c.top_logprobs.length === 2 && Array.isArray(c.bytes)));

    const stream = await client.chat.completions.create({
      model: 'chat',
      messages,
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), expected.text);
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.equal(chunks.at(-1)!.usage?.completion_tokens, 12);
    assert.equal(chunks.at(-2)!.choices[0].finish_reason, 'length');

    // The SDK's streaming helper reassembles the same message.
    const runner = client.beta.chat.completions.stream({ model: 'chat', messages, max_tokens: 12, temperature: 0 });
    assert.equal((await runner.finalChatCompletion()).choices[0].message.content, expected.text);
  });

  test('chat on a model without a chat template is a 400 that says so', async () => {
    await expectBadRequest(
      client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] }),
      /chat template/,
      'chat without a template',
    );
  });

  test("every parameter out of range or of the wrong type is a 400 in OpenAI's shape", async () => {
    const base = { model: 'chat', prompt: PROMPT, max_tokens: 2 };
    const completionCases: [object, string][] = [
      [{ n: 0 }, 'n'],
      [{ n: 17 }, 'n'],
      [{ n: 1.5 }, 'n'],
      [{ logprobs: 21 }, 'logprobs'],
      [{ logprobs: -1 }, 'logprobs'],
      [{ logprobs: 'yes' }, 'logprobs'],
      [{ echo: 'yes' }, 'echo'],
      [{ suffix: 5 }, 'suffix'],
      [{ suffix: 'x', echo: true }, 'echo'],
      [{ temperature: 2.5 }, 'temperature'],
      [{ temperature: -1 }, 'temperature'],
      [{ top_p: 0 }, 'top_p'],
      [{ top_p: 1.5 }, 'top_p'],
      [{ top_k: -2 }, 'top_k'],
      [{ presence_penalty: 3 }, 'presence_penalty'],
      [{ frequency_penalty: -2.5 }, 'frequency_penalty'],
      [{ logit_bias: { abc: 1 } }, 'logit_bias'],
      [{ logit_bias: { 1: 101 } }, 'logit_bias'],
      [{ logit_bias: { 999999: 1 } }, 'logit_bias'],
      [{ logit_bias: [1] }, 'logit_bias'],
      [{ seed: 1.5 }, 'seed'],
      [{ seed: '1' }, 'seed'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ stop: ['x'.repeat(300)] }, 'stop'],
      [{ stop: 7 }, 'stop'],
      [{ stream: 'yes' }, 'stream'],
      [{ stream_options: { include_usage: true } }, 'stream_options'],
      [{ stream: true, stream_options: { include_usage: 'yes' } }, 'stream_options'],
      [{ max_tokens: -1 }, 'max_tokens'],
      [{ max_tokens: 100_000 }, 'max_tokens'],
      [{ best_of: 3 }, 'best_of'],
      [{ user: 5 }, 'user'],
      [{ prompt: [[1, 2], 'x', 3] }, 'prompt'],
      [{ prompt: [1, 2, 999_999] }, 'prompt'],
      [{ prompt: Array.from({ length: 33 }, () => 'x') }, 'prompt'],
      [{ prompt: ['a', 'b', 'c'], n: 11 }, 'n'],
      [{ prompt: 'x'.repeat(2000), echo: true, logprobs: 0 }, 'prompt'],
    ];
    for (const [change, param] of completionCases)
      await expectBadRequest(
        client.completions.create({ ...base, ...change } as never),
        param,
        `completions ${JSON.stringify(change).slice(0, 80)}`,
      );

    const messages = [{ role: 'user', content: 'hi' }];
    const chatCases: [object, string][] = [
      [{ messages: [] }, 'messages'],
      [{ messages: 'hi' }, 'messages'],
      [{ messages: [{ role: 'robot', content: 'hi' }] }, 'messages'],
      [{ messages: [{ role: 'user', content: 5 }] }, 'messages'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages'],
      [{ messages: [{ role: 'tool', content: 'x', tool_call_id: '1' }] }, 'messages'],
      [{ top_logprobs: 2 }, 'top_logprobs'],
      [{ logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      [{ logprobs: 'yes' }, 'logprobs'],
      [{ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ max_completion_tokens: 100_000 }, 'max_completion_tokens'],
      [{ max_tokens: 1000 }, 'max_tokens'],
      [{ n: 20 }, 'n'],
      [{ temperature: 9 }, 'temperature'],
    ];
    for (const [change, param] of chatCases)
      await expectBadRequest(
        client.chat.completions.create({ model: 'chat', messages, ...change } as never),
        param,
        `chat ${JSON.stringify(change).slice(0, 80)}`,
      );

    // Not found and not JSON: also OpenAI's shape.
    await assert.rejects(client.completions.create({ model: 'nope', prompt: 'x' }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      return true;
    });
    const raw = await request(`${server.url}/v1/chat/completions`, { raw: '{"messages": [' });
    assert.equal(raw.status, 400);
    assert.equal(raw.body.error.type, 'invalid_request_error');
  });

  test('/tokenize, /detokenize and /tokenizer_info (vLLM shapes, as lm-evaluation-harness calls them)', async () => {
    const tokenized = await request(`${server.url}/tokenize`, { body: { prompt: PROMPT, add_special_tokens: false } });
    assert.equal(tokenized.status, 200);
    assert.deepEqual(tokenized.body.tokens, model.tokenizer.encode(PROMPT));
    assert.equal(tokenized.body.count, tokenized.body.tokens.length);
    assert.equal(tokenized.body.max_model_len, chatFolder.config.contextLength);
    const back = await request(`${server.url}/detokenize`, { body: { model: 'chat', tokens: tokenized.body.tokens } });
    assert.equal(back.body.prompt, PROMPT);
    const chat = await request(`${server.url}/tokenize`, {
      body: { model: 'chat', messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.deepEqual(chat.body.tokens, model.tokenizer.encode('<|user|>\nhi\n<|assistant|>\n'));
    const info = await request(`${server.url}/tokenizer_info`);
    assert.equal(info.body.eos_token, '<|endoftext|>');
    assert.equal(info.body.chat_template, CHAT_TEMPLATE);
    for (const [route, body, param] of [
      ['/tokenize', { prompt: 5 }, 'prompt'],
      ['/tokenize', { messages: [{ role: 'user', content: 'x' }], model: 'plain' }, 'model'],
      ['/detokenize', { tokens: [1, 'a'] }, 'tokens'],
      ['/detokenize', { tokens: [999_999] }, 'tokens'],
      ['/detokenize', { tokens: [1], model: 3 }, 'model'],
    ] as const) {
      const response = await request(`${server.url}${route}`, { body });
      assert.equal(response.status, 400, `${route} ${JSON.stringify(body)}`);
      assert.equal(response.body.error.param, param);
    }
  });
});
