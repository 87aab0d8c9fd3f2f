// Tests that the extension manifest (package.json `contributes`) and the client agree: every command has a
// handler id and every id is contributed, menus and keybindings name real commands, settings match the protocol
// defaults and bounds and have descriptions, and .vscodeignore is an allow-list. Also checks the webview message guard.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { defaultSettings, ExplainCommand, type NumericSetting, numericSettings } from '../../server/src/protocol';
import { commandIds } from '../../client/src/commandIds';
import { defaultClientSettings } from '../../client/src/config';
import { isFromWebview } from '../../client/src/webviewProtocol';

const root = path.resolve(__dirname, '../..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const contributes = manifest.contributes;
const declared = new Set<string>(contributes.commands.map((c: { command: string }) => c.command));

test('every command id is contributed, and only those', () => {
  assert.deepEqual([...declared].sort(), Object.values(commandIds).sort());
  for (const c of contributes.commands)
    assert.ok(c.title && c.category === 'Modelwright', `${c.command} needs a title and the category`);
});

test("the server's explain code action runs a command the client registers", () => {
  assert.equal(commandIds.explain, ExplainCommand.command);
});

test('menus and keybindings name contributed commands', () => {
  for (const [menu, items] of Object.entries(contributes.menus) as [string, { command: string }[]][]) {
    for (const item of items) assert.ok(declared.has(item.command), `${menu}: ${item.command}`);
  }
  for (const k of contributes.keybindings) assert.ok(declared.has(k.command), k.command);
  assert.ok(contributes.keybindings.some((k: { command: string }) => k.command === commandIds.explainSelection));
});

test('the views and the container are declared', () => {
  assert.deepEqual(
    contributes.viewsContainers.activitybar.map((c: { id: string }) => c.id),
    ['modelwright'],
  );
  const views = contributes.views.modelwright;
  assert.deepEqual(
    views.map((v: { id: string }) => v.id),
    ['modelwright.models', 'modelwright.training'],
  );
  assert.equal(views[1].type, 'webview');
  assert.ok(fs.existsSync(path.join(root, manifest.icon)));
  assert.ok(fs.existsSync(path.join(root, contributes.viewsContainers.activitybar[0].icon)));
});

test('settings match the protocol defaults and all have descriptions', () => {
  const properties = contributes.configuration.properties as Record<
    string,
    { default: unknown; description?: string; markdownDescription?: string }
  >;
  const flatten = (value: unknown, prefix: string, out: Record<string, unknown>) => {
    if (value && typeof value === 'object' && !Array.isArray(value))
      for (const [k, v] of Object.entries(value)) flatten(v, `${prefix}.${k}`, out);
    else out[prefix] = value;
    return out;
  };
  const expected = flatten(defaultSettings, 'modelwright', {});
  expected['modelwright.modelsDirectory'] = defaultClientSettings.modelsDirectory;
  expected['modelwright.training.minutes'] = defaultClientSettings.trainingMinutes;
  expected['modelwright.deploy.threshold'] = defaultClientSettings.deployThreshold;
  expected['modelwright.inferenceThreads'] = defaultClientSettings.inferenceThreads;
  for (const [key, value] of Object.entries(expected)) {
    assert.ok(properties[key], `setting ${key} is contributed`);
    assert.deepEqual(properties[key].default, value, `default of ${key}`);
  }
  for (const [key, p] of Object.entries(properties)) {
    assert.ok(key === 'modelwright.trace.server' || key in expected, `${key} is read by the client or the server`);
    assert.ok((p.description ?? p.markdownDescription ?? '').length > 10, `${key} has a description`);
  }
});

test('numeric settings and protocol numericSettings agree on keys, defaults, bounds and integer types', () => {
  const properties = contributes.configuration.properties as Record<
    string,
    { type: string; default?: unknown; minimum?: unknown; maximum?: unknown }
  >;
  const prefix = 'modelwright.';
  const numeric = Object.entries(properties).filter(([, p]) => p.type === 'number' || p.type === 'integer');
  assert.ok(numeric.length > 0, 'package.json has numeric settings');
  for (const [key, p] of numeric) {
    const name = key.slice(prefix.length);
    assert.ok(key.startsWith(prefix) && Object.hasOwn(numericSettings, name), `${key} is in numericSettings`);
    const expected = numericSettings[name as NumericSetting];
    assert.deepEqual(
      { default: p.default, minimum: p.minimum, maximum: p.maximum },
      { default: expected.default, minimum: expected.minimum, maximum: expected.maximum },
      `default and bounds of ${key}`,
    );
    assert.equal(p.type === 'integer', expected.integer, `${key} is of type ${p.type}`);
  }
  for (const name of Object.keys(numericSettings))
    assert.ok(
      numeric.some(([key]) => key === prefix + name),
      `numericSettings['${name}'] is a numeric setting in package.json`,
    );
});

test('workspace trust is limited, and restricts the settings that point at model folders', () => {
  const trust = manifest.capabilities.untrustedWorkspaces;
  assert.equal(trust.supported, 'limited');
  assert.ok(trust.restrictedConfigurations.includes('modelwright.modelsDirectory'));
  assert.ok(trust.restrictedConfigurations.includes('modelwright.models.completion'));
});

test('.vscodeignore is an allow-list that ships the bundles and the default model', () => {
  const lines = fs
    .readFileSync(path.join(root, '.vscodeignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  assert.equal(lines[0], '**');
  for (const needed of [
    '!client/out/extension.js',
    '!server/out/server.js',
    '!models/default/onnx/**',
    '!models/default/*.json',
    '!node_modules/onnxruntime-node/bin/napi-v6/linux/x64/**',
  ]) {
    assert.ok(lines.includes(needed), needed);
  }
  assert.ok(
    lines.slice(1).every((l) => l.startsWith('!')),
    'after ** only re-includes',
  );
});

test('the webview message guard accepts only known messages', () => {
  assert.ok(isFromWebview({ type: 'ready' }));
  assert.ok(isFromWebview({ type: 'command', command: 'train' }));
  assert.ok(!isFromWebview({ type: 'command', command: 'rm -rf' }));
  assert.ok(!isFromWebview({ type: 'other' }));
  assert.ok(!isFromWebview(null));
  assert.ok(!isFromWebview('ready'));
});
