// Tests the first-run contributions: the walkthrough (every step has a Markdown page that exists and a button that
// runs a contributed command), the chat participant's and the model provider's manifest entries, the status bar
// menu's items (client/src/statusMenu.ts) and the privacy wording in the settings and the README.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { chatCommands, participantId } from '../../client/src/chat/chatHandler';
import { languageModelVendor } from '../../client/src/chat/languageModels';
import { commandIds } from '../../client/src/commandIds';
import { type MenuInput, privacyNote, statusMenu, walkthroughId } from '../../client/src/statusMenu';

const root = path.resolve(__dirname, '../..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const contributes = manifest.contributes;
const declared = new Set<string>(contributes.commands.map((c: { command: string }) => c.command));

test('the walkthrough has the five first-run steps, each with its page and a button for a contributed command', () => {
  assert.equal(contributes.walkthroughs.length, 1);
  const walkthrough = contributes.walkthroughs[0];
  assert.equal(`${manifest.publisher}.${manifest.name}#${walkthrough.id}`, walkthroughId);
  assert.deepEqual(
    walkthrough.steps.map((s: { id: string }) => s.id),
    ['completions', 'download', 'train', 'evaluate', 'deploy'],
  );
  for (const step of walkthrough.steps) {
    const page = path.join(root, step.media.markdown);
    assert.ok(fs.existsSync(page), `${step.id}: ${step.media.markdown} exists`);
    assert.match(fs.readFileSync(page, 'utf8'), /^<!--[\s\S]*?-->\n# /, `${step.id}: the page says what it is for`);
    const button = /\[[^\]]+\]\(command:([\w.]+)\)/.exec(step.description)?.[1];
    assert.ok(button && declared.has(button), `${step.id}: a button for a contributed command (${button})`);
    assert.ok(
      step.completionEvents.includes(`onCommand:${button}`),
      `${step.id}: the step is done once its command ran`,
    );
    assert.ok(
      step.media.markdown.startsWith('client/media/'),
      'pages are under client/media/ (in the .vsix allow-list)',
    );
  }
});

test('the chat participant and the model provider are contributed as the code registers them', () => {
  assert.deepEqual(
    contributes.chatParticipants.map((p: { id: string; name: string }) => [p.id, p.name]),
    [[participantId, 'modelwright']],
  );
  assert.deepEqual(
    contributes.chatParticipants[0].commands.map((c: { name: string }) => c.name),
    chatCommands.map((c) => c.name),
  );
  assert.deepEqual(
    contributes.languageModelChatProviders.map((p: { vendor: string }) => p.vendor),
    [languageModelVendor],
  );
  // The editor API level stays at what vscode-languageclient needs; the newer APIs are detected at run time.
  assert.equal(manifest.engines.vscode, '^1.91.0');
  assert.ok(manifest.devDependencies['@types/vscode'].startsWith('^1.91'), '@types/vscode matches the engine');
});

const running: MenuInput = {
  connection: 'running',
  server: { health: 'ready', active: { completion: 'default', explanation: 'chatty' } },
  completionsEnabled: true,
  trusted: true,
  telemetryEnabled: true,
};

test('the status bar menu offers the model, pause, the panel, the logs and the walkthrough', () => {
  const items = statusMenu(running);
  assert.deepEqual(
    items.map((i) => i.command),
    ['selectModel', 'toggleCompletions', 'showTraining', 'showLogs', 'openWalkthrough', undefined],
  );
  assert.match(items[0].label, /Model: default/);
  assert.equal(items[0].description, 'explanations: chatty');
  assert.match(items[1].label, /Pause inline completions/);
  for (const item of items) if (item.command) assert.ok(declared.has(commandIds[item.command]), item.command);
});

test('paused completions offer to resume; a training offers Stop; a stopped server offers a restart', () => {
  const paused = statusMenu({ ...running, completionsEnabled: false });
  assert.match(paused[1].label, /Resume inline completions/);
  const training = statusMenu({
    ...running,
    server: {
      health: 'ready',
      active: { completion: 'default' },
      training: { name: 'mine', phase: 'training', message: '', step: 3, totalSteps: 9, elapsedSeconds: 2 },
    },
  });
  assert.ok(training.some((i) => i.command === 'stopTraining' && i.label.includes('mine')));
  const stopped = statusMenu({ ...running, connection: 'stopped', server: undefined });
  assert.equal(stopped[0].command, 'restartServer');
  assert.match(stopped[1].label, /Model: none/);
});

test('nothing is sent, whatever the telemetry setting, and the settings and README say so', () => {
  assert.match(privacyNote(true), /sends no telemetry \(even with VS Code telemetry on\)/);
  assert.match(privacyNote(false), /sends no telemetry \(VS Code telemetry is off too\)/);
  assert.match(statusMenu(running).at(-1)?.description ?? '', /no telemetry/);
  const settings = Object.values(contributes.configuration.properties) as { markdownDescription?: string }[];
  assert.ok(
    settings.some((s) => /sends no telemetry/.test(s.markdownDescription ?? '')),
    'a setting says so',
  );
  assert.match(
    fs.readFileSync(path.join(root, 'README.md'), 'utf8'),
    /\*\*Privacy:\*\* Modelwright sends no telemetry/,
  );
});
