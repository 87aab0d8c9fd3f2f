// End-to-end test of the extension in a real VS Code (code-server 4.100.3 + headless Chromium): installs the built
// .vsix, opens the walkthrough and the status bar menu (pausing and resuming completions), sees ghost text from the
// shipped model and accepts it with Tab, measures keystroke-to-ghost-text time, trains a model from the palette,
// finds it in the Models tree, deploys and selects it, stops a second training and deletes that model, explains a
// selection in a Markdown preview, and looks for the chat view (@modelwright). Screenshots and timings go to
// .tmp/e2e-artifacts/. Run by test/clients/run.sh (`npm run test:clients`).
/// <reference lib="dom" />
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildSync } from 'esbuild';
import type { Browser } from 'playwright-core';
import {
  CodeServer,
  installTools,
  launchBrowser,
  log,
  percentile,
  repositoryRoot,
  sleep,
  Workbench,
} from './codeServer.harness';

const artifacts = path.join(repositoryRoot, '.tmp', 'e2e-artifacts');
const trainedModel = 'e2e-tiny';
const trainingMinutes = 1;
const timings: Record<string, number | number[] | string> = {};

let root = '';
let codeServer: CodeServer | undefined;
let browser: Browser | undefined;
let workbench: Workbench;

/** A small TypeScript workspace to type in and train on: the extension's own client sources and an example file. */
function makeWorkspace(dir: string): void {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  for (const from of ['client/src', 'server/src/cli', 'server/src/eval', 'server/src/registry']) {
    const folder = path.join(repositoryRoot, from);
    if (!fs.existsSync(folder)) continue;
    for (const f of fs.readdirSync(folder))
      if (f.endsWith('.ts')) fs.copyFileSync(path.join(folder, f), path.join(src, f));
  }
  fs.writeFileSync(
    path.join(src, 'example.ts'),
    [
      '// Shapes and their areas.',
      'export interface Shape {',
      '  kind: string;',
      '  width: number;',
      '  height: number;',
      '}',
      '',
      'export function area(shape: Shape): number {',
      '  if (shape.kind === "square") return shape.width * shape.width;',
      '  return shape.width * shape.height;',
      '}',
      '',
      '',
    ].join('\n'),
  );
}

/** The shipped model; when the real one is not there yet, a stand-in is trained for the test (and removed after). */
function ensureDefaultModel(workspace: string): boolean {
  const modelDir = path.join(repositoryRoot, 'models', 'default');
  if (fs.existsSync(path.join(modelDir, 'config.json'))) return false;
  log('models/default is missing: training a stand-in (preset tiny, 30 steps)');
  execFileSync(
    'node',
    ['bin/modelwright.js', 'train', '--workspace', workspace, '--out', modelDir, '--preset', 'tiny', '--steps', '30'],
    {
      cwd: repositoryRoot,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 10 * 60_000,
    },
  );
  fs.writeFileSync(
    path.join(modelDir, 'STAND-IN'),
    'Trained by test/clients/codeServer.e2e.ts because models/default was missing.\n',
  );
  return true;
}

/** `npm run package` (or the .vsix named by MODELWRIGHT_VSIX), with a stand-in default model if there is none. */
function buildVsix(workspace: string, onStandIn: (created: boolean) => void): string {
  if (process.env.MODELWRIGHT_VSIX) return path.resolve(process.env.MODELWRIGHT_VSIX);
  const started = Date.now();
  const standIn = ensureDefaultModel(workspace);
  onStandIn(standIn);
  try {
    execFileSync('npm', ['run', 'package'], {
      cwd: repositoryRoot,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 10 * 60_000,
    });
  } finally {
    if (standIn) fs.rmSync(path.join(repositoryRoot, 'models', 'default'), { recursive: true, force: true });
  }
  timings.packageMs = Date.now() - started;
  return path.join(repositoryRoot, '.tmp', 'modelwright-linux-x64.vsix');
}

/** The processes running this run's language server (by the installed extension's path, unique to the run). */
function languageServerPids(): number[] {
  const extensions = codeServer!.extensionsDir + path.sep;
  const isServer = (arg: string) => arg.startsWith(extensions) && arg.endsWith(path.join('server', 'out', 'server.js'));
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').some(isServer)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** The extension's log (its output channel), as VS Code writes it under the user data folder. */
function extensionLog(): string {
  const logs = path.join(codeServer!.userDataDir, 'logs');
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name === 'Modelwright.log') found.push(path.join(dir, e.name));
    }
  };
  if (fs.existsSync(logs)) walk(logs);
  return found.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
}

// Each line ends where an identifier starts; the timed keystroke is its first letter.
const latencyLines = [
  'const total = ',
  'let count = ',
  'if (shape.width > ',
  'const half = shape.',
  'export const name = ',
  'return shape.',
  'const ratio = shape.width / ',
  'let index = ',
  'const label = `${',
  'throw new ',
  'const doubled = area(',
  'export type Kind = ',
  'const width = shape.',
  'console.log(',
  'const result = ',
  'let height = shape.',
];

/** Times ghost text after a keystroke on each of the latency lines; records samples, p50 and p95 under `key`. */
async function measureLatency(key: string): Promise<number[]> {
  await installLatencyProbe();
  const samples: number[] = [];
  for (const text of latencyLines) {
    const ms = await timedCompletion(text);
    if (ms !== undefined) samples.push(Math.round(ms));
    log(`${JSON.stringify(text)}: ${ms === undefined ? 'no ghost text' : `${Math.round(ms)} ms`}`);
  }
  timings[`${key}Ms`] = samples;
  timings[`${key}P50`] = percentile(samples, 0.5);
  timings[`${key}P95`] = percentile(samples, 0.95);
  log(`${key}: p50 ${timings[`${key}P50`]} ms, p95 ${timings[`${key}P95`]} ms over ${samples.length} keystrokes`);
  return samples;
}

/** Types lines until one gets ghost text (a barely trained model may suggest nothing for some); true if one did. */
async function someGhostText(lines: string[]): Promise<boolean> {
  const page = workbench.page;
  for (const text of lines) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    await page.keyboard.type(text, { delay: 25 });
    if (
      await workbench
        .ghostText()
        .first()
        .waitFor({ timeout: 5000 })
        .then(
          () => true,
          () => false,
        )
    )
      return true;
  }
  return false;
}

const probeLines = ['const perimeterOf = ', 'export function width(', 'return shape.', 'let value = '];

/**
 * Types the probe lines and tells whether `model` answered them: ghost text, or, for a barely trained model that
 * may have nothing to suggest (its first token a line break), the status bar's latency of its last completion.
 */
async function modelAnswersTyping(model: string): Promise<'ghost text' | 'answered'> {
  if (await someGhostText(probeLines)) return 'ghost text';
  const latency = workbench.statusItem().filter({ hasText: new RegExp(`${model} · \\d+(\\.\\d+)? ms`) });
  await latency.first().waitFor({ timeout: 5000 });
  return 'answered';
}

/** Installs in the page a clock for keystroke-to-ghost-text: the last keydown and the first ghost text after it. */
async function installLatencyProbe(): Promise<void> {
  await workbench.page.evaluate(() => {
    const w = window as unknown as { mwProbe?: { keydown: number; ghost: number } };
    if (w.mwProbe) return;
    const probe = { keydown: 0, ghost: 0 };
    w.mwProbe = probe;
    window.addEventListener('keydown', () => ((probe.keydown = performance.now()), (probe.ghost = 0)), true);
    new MutationObserver(() => {
      if (
        probe.keydown &&
        !probe.ghost &&
        document.querySelector('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text')
      )
        probe.ghost = performance.now();
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
}

/**
 * Types `text` on a new line, then one more timed keystroke: milliseconds from its keydown to ghost text. The
 * timed character is one the suggestion then shown does not start with, and that suggestion is dismissed first,
 * so the time is a new request through the whole pipeline (not VS Code or the server typing through a
 * suggestion they already have).
 */
async function timedCompletion(text: string): Promise<number | undefined> {
  const page = workbench.page;
  await page.keyboard.press('Escape');
  await page.keyboard.press('End');
  await page.keyboard.press('Enter');
  await page.keyboard.type(text, { delay: 25 });
  await sleep(800);
  const shown = await workbench.inlineGhostText();
  const timed = ['x', 'q', 'z'].find((c) => !shown.startsWith(c)) as string;
  for (let i = 0; i < 5 && (await workbench.ghostText().count()) > 0; i++) {
    await page.keyboard.press('Escape');
    await sleep(100);
  }
  await page.keyboard.type(timed);
  const deadline = Date.now() + 4000;
  while (Date.now() < deadline) {
    const probe = await page.evaluate(
      () => (window as unknown as { mwProbe: { keydown: number; ghost: number } }).mwProbe,
    );
    if (probe.ghost) return probe.ghost - probe.keydown;
    await sleep(20);
  }
  return undefined;
}

/** Filters the open quick pick by `text` and accepts the first row showing it (for labels that start with an icon). */
async function chooseRow(text: string): Promise<void> {
  await workbench.quickInput().fill(text);
  await workbench.page
    .locator('.quick-input-widget .monaco-list-row', { hasText: text })
    .first()
    .waitFor({ timeout: 10_000 });
  await workbench.page.keyboard.press('Enter');
}

/** True once some frame (webviews nest theirs) has a `selector` element showing `text`, within 20 s. */
async function frameWithText(selector: string, text: string): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    for (const frame of workbench.page.frames()) {
      const texts = await frame
        .locator(selector)
        .allInnerTexts()
        .catch(() => [] as string[]);
      if (texts.some((t) => t.includes(text))) return true;
    }
    await sleep(250);
  }
  return false;
}

/** A step of the scenario; when it fails, a screenshot shows what the user saw at that moment. */
function step(title: string, body: () => Promise<void>): void {
  it(title, async () => {
    try {
      await body();
    } catch (error) {
      await workbench?.screenshot(`failed-${title.split(' ').slice(0, 3).join('-')}`).catch(() => undefined);
      throw error;
    }
  });
}

describe('Modelwright in a real VS Code (code-server + Chromium)', { timeout: 30 * 60_000 }, () => {
  let standIn = false;

  before(async () => {
    fs.rmSync(artifacts, { recursive: true, force: true });
    fs.mkdirSync(artifacts, { recursive: true });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-e2e-'));
    const workspace = path.join(root, 'workspace');
    makeWorkspace(workspace);

    let started = Date.now();
    const executable = installTools();
    timings.installToolsMs = Date.now() - started;

    const vsix = buildVsix(workspace, (created) => (standIn = created));
    timings.vsixBytes = fs.statSync(vsix).size;

    codeServer = new CodeServer({
      executable,
      root,
      workspace,
      settings: {
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'workbench.welcomePage.walkthroughs.openOnInstall': false,
        'chat.commandCenter.enabled': false,
        'extensions.autoUpdate': false,
        'extensions.autoCheckUpdates': false,
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'git.enabled': false,
        'editor.inlineSuggest.enabled': true,
        // Keep the suggest widget away so that Tab accepts the ghost text.
        'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
        'editor.suggestOnTriggerCharacters': false,
        'editor.parameterHints.enabled': false,
        'editor.minimap.enabled': false,
        'modelwright.modelsDirectory': path.join(root, 'models'),
        // The test's models are barely trained: show every suggestion, however unsure.
        'modelwright.completion.confidenceThreshold': 0,
        // The messages between the extension and the server go to the Modelwright log (kept as an artifact).
        'modelwright.trace.server': 'messages',
      },
    });
    started = Date.now();
    codeServer.installExtension(vsix);
    timings.installExtensionMs = Date.now() - started;
    timings.healthzMs = await codeServer.start();
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    workbench = new Workbench(page, artifacts);
    log(`code-server on port ${codeServer.port}, scratch ${root}`);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await codeServer?.stop();
    // Keep the logs of the run beside the screenshots.
    const logs = path.join(codeServer?.userDataDir ?? root, 'logs');
    if (fs.existsSync(logs)) fs.cpSync(logs, path.join(artifacts, 'logs'), { recursive: true });
    if (root && fs.existsSync(path.join(root, 'code-server.log')))
      fs.copyFileSync(path.join(root, 'code-server.log'), path.join(artifacts, 'code-server.log'));
    timings.standInDefaultModel = String(standIn);
    fs.writeFileSync(path.join(artifacts, 'timings.json'), JSON.stringify(timings, null, 2) + '\n');
    log(`timings: ${JSON.stringify(timings)}`);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  step('starts, and the status bar names the shipped model', async () => {
    const page = workbench.page;
    const started = Date.now();
    await page.goto(codeServer!.url);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    timings.workbenchMs = Date.now() - started;
    await workbench.openFile('example.ts');
    await workbench.statusItem().filter({ hasText: 'default' }).waitFor({ timeout: 90_000 });
    timings.serverReadyMs = Date.now() - started;
    await workbench.screenshot('started');
  });

  step('opens the walkthrough: five steps, each with its page and command button', async () => {
    const page = workbench.page;
    await workbench.runCommand('Modelwright: Get Started');
    const walkthrough = page.locator('.gettingStartedContainer');
    await walkthrough.locator('text=Get started with Modelwright').first().waitFor({ timeout: 20_000 });
    for (const title of [
      'Completions from the shipped model',
      'Download a pretrained model',
      'Train on this workspace',
      'Evaluate',
      'Deploy',
    ])
      await walkthrough.locator('.getting-started-step', { hasText: title }).first().waitFor({ timeout: 10_000 });
    await workbench.screenshot('walkthrough');
    await walkthrough.locator('.getting-started-step', { hasText: 'Download a pretrained model' }).first().click();
    await walkthrough
      .locator('.getting-started-step.expanded', { hasText: 'Download Model' })
      .first()
      .waitFor({ timeout: 10_000 });
    // The step's Markdown page renders beside the steps (in a webview).
    assert.ok(await frameWithText('h1', 'Download a pretrained model'), "the step's page is shown");
    await workbench.screenshot('walkthrough-download-step');
    await workbench.runCommand('View: Close Editor');
    await workbench.openFile('example.ts');
  });

  step('the status bar item opens the menu, which pauses and resumes completions', async () => {
    const page = workbench.page;
    await workbench.statusItem().click();
    const menu = page.locator('.quick-input-widget');
    for (const row of ['Model: default', 'Pause inline completions', 'Open the Modelwright panel', 'Show logs'])
      await menu.locator('.monaco-list-row', { hasText: row }).first().waitFor({ timeout: 10_000 });
    await workbench.screenshot('status-menu');
    await chooseRow('Pause inline completions');
    await workbench.statusItem().locator('.codicon-debug-pause').waitFor({ timeout: 10_000 });
    await workbench.screenshot('completions-paused');
    await workbench.statusItem().click();
    await chooseRow('Resume inline completions');
    await workbench.statusItem().locator('.codicon-sparkle').waitFor({ timeout: 10_000 });
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
  });

  step('shows ghost text from the default model and accepts it with Tab', async () => {
    const page = workbench.page;
    await page.keyboard.press('Control+End');
    const started = Date.now();
    await page.keyboard.type('export function perimeter(shape: Shape): number {\n', { delay: 30 });
    // A small model may have nothing confident to say after one particular line start (the server then shows no
    // suggestion, by design), so try a few common ones; what must hold is that the shipped model shows ghost text.
    let shown = false;
    for (const lineStart of ['return ', 'const width = shape.', 'if (shape.', 'let total = ']) {
      await page.keyboard.type(lineStart, { delay: 30 });
      shown = await workbench
        .ghostText()
        .first()
        .waitFor({ timeout: 10_000 })
        .then(
          () => true,
          () => false,
        );
      if (shown) break;
      log(`no ghost text after ${JSON.stringify(lineStart)}; clearing the line and trying another`);
      for (const key of ['Escape', 'Home', 'Shift+End', 'Backspace']) await page.keyboard.press(key);
    }
    assert.ok(shown, 'ghost text from the shipped model after one of the line starts');
    timings.firstGhostTextMs = Date.now() - started;
    await sleep(300); // let the suggestion settle before reading it
    const suggestion = await workbench.inlineGhostText();
    log(`ghost text: ${JSON.stringify(suggestion)}`);
    await workbench.screenshot('ghost-text');
    const before = await workbench.currentLineText();
    await page.keyboard.press('Tab');
    await sleep(300);
    const line = await workbench.currentLineText();
    log(`line before Tab ${JSON.stringify(before)}, after ${JSON.stringify(line)}`);
    assert.ok(line.trimEnd().length > before.trimEnd().length, 'Tab inserted the suggestion');
    if (suggestion.trim()) assert.ok(line.includes(suggestion.trim()), 'the inserted text is the suggestion');
    await workbench.screenshot('accepted-with-tab');
  });

  step('measures keystroke-to-ghost-text time', async () => {
    const samples = await measureLatency('keystrokeToGhost');
    // Where the model is unsure the server shows nothing by design, so the median needs only most lines to answer.
    assert.ok(
      samples.length >= latencyLines.length / 2,
      `ghost text after at least half of ${latencyLines.length} timed keystrokes (got ${samples.length})`,
    );
    // A bound for gross regressions only; the goal (the instant-server baseline + 50 ms) is reported, not enforced.
    assert.ok(percentile(samples, 0.5) < 1000, 'p50 under a second');
    await workbench.screenshot('latency-runs');
  });

  step('trains a model from the palette with progress, and it appears in the Models tree', async () => {
    const page = workbench.page;
    await page.keyboard.press('Escape');
    await workbench.runCommand('Modelwright: Train Model');
    await workbench.pick('tiny', { title: 'Train Model (1/3)' });
    await workbench.pick(`${trainingMinutes} minute`, { title: 'Train Model (2/3)' });
    await workbench.answer(trainedModel);
    const started = Date.now();
    const progress = workbench.notification(`Training ${trainedModel}`);
    await progress.waitFor({ timeout: 30_000 });
    await workbench.notification(/step \d+\/\d+/).waitFor({ timeout: 120_000 });
    await workbench.showContainer();
    await sleep(4000); // a few steps on the live curve
    await workbench.screenshot('training-progress');
    const done = workbench.notification(new RegExp(`Trained ${trainedModel}|Training ${trainedModel} stopped`));
    await done.waitFor({ timeout: (trainingMinutes + 5) * 60_000 });
    timings.trainingMs = Date.now() - started;
    log(`training: ${await done.innerText()}`);
    const row = page.locator('.sidebar .monaco-list-row', { hasText: trainedModel });
    await row.waitFor({ timeout: 20_000 });
    await workbench.screenshot('trained-model-in-tree');
    // The Training panel drew the loss curve.
    const frame = await workbench.webviewFrame('#loss');
    assert.equal(await frame.locator('#lossEmpty').isHidden(), true, 'the loss chart has points');
  });

  step('deploys the trained model and completes with it', async () => {
    const page = workbench.page;
    await workbench.runCommand('Modelwright: Deploy Model');
    await workbench.pick(trainedModel);
    await workbench.pick('Inline completions');
    // The deploy gate compares the barely trained model with the serving one and asks before deploying a worse one.
    const deployed = workbench.statusItem().filter({ hasText: trainedModel });
    const gate = page.locator('.monaco-dialog-box', { hasText: 'Deploy Anyway' });
    await deployed.or(gate).first().waitFor({ timeout: 120_000 });
    if (await gate.isVisible()) {
      await workbench.screenshot('deploy-gate');
      await gate.getByRole('button', { name: 'Deploy Anyway' }).click();
    }
    await deployed.waitFor({ timeout: 60_000 });
    await page
      .locator('.sidebar .monaco-list-row', { hasText: trainedModel })
      .filter({ hasText: 'active' })
      .waitFor({ timeout: 20_000 });
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
    log(`the deployed model: ${await modelAnswersTyping(trainedModel)}`);
    await workbench.statusItem().filter({ hasText: trainedModel }).waitFor({ timeout: 5000 });
    await workbench.screenshot('deployed-model-completes');
  });

  step('selects the trained model for this workspace with Select Model', async () => {
    await workbench.page.keyboard.press('Escape');
    await workbench.runCommand('Modelwright: Select Model');
    await workbench.pick(trainedModel, { title: 'Select Model' });
    await workbench.pick('Inline completions');
    await workbench.notification(`This workspace now uses ${trainedModel} for inline completions`).waitFor({
      timeout: 20_000,
    });
    await workbench.screenshot('select-model');
    // Back to the deployed model (the same one here), so that later steps see the workspace's default choice.
    await workbench.runCommand('Modelwright: Select Model');
    await workbench.page.locator('.quick-input-widget .quick-input-title', { hasText: 'Select Model' }).waitFor();
    await chooseRow('The deployed model');
    await workbench.pick('Both');
    await workbench.notification('now uses the deployed model').waitFor({ timeout: 20_000 });
  });

  step('deploys the trained model as an HTTP service that answers OpenAI completions', async () => {
    await workbench.page.keyboard.press('Escape');
    await workbench.runCommand('Modelwright: Deploy Model');
    await workbench.pick(trainedModel);
    await workbench.pick('HTTP service');
    const served = workbench.notification('is served at');
    await served.waitFor({ timeout: 60_000 });
    const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(await served.innerText())?.[1];
    assert.ok(url, 'the notification gives the service URL');
    await workbench.screenshot('http-service');
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((m) => m.id),
      [trainedModel],
    );
    const response = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: trainedModel, prompt: 'export function area(', max_tokens: 8 }),
    });
    assert.equal(response.status, 200);
    const completion = (await response.json()) as { choices: { text: string }[] };
    log(`HTTP completion from ${url}: ${JSON.stringify(completion.choices[0]?.text)}`);
    assert.equal(typeof completion.choices[0]?.text, 'string');
    await workbench.runCommand('Modelwright: Stop HTTP Service');
    await workbench.notification('HTTP service stopped').waitFor({ timeout: 20_000 });
    await assert.rejects(fetch(`${url}/v1/models`), 'the service no longer answers');
  });

  step('evaluates the trained model and shows the metrics in the Training panel', async () => {
    await workbench.page.keyboard.press('Escape');
    await workbench.runCommand('Modelwright: Evaluate Model');
    await workbench.pick(trainedModel);
    const started = Date.now();
    await workbench.notification(`Evaluating ${trainedModel}`).waitFor({ timeout: 30_000 });
    const frame = await workbench.webviewFrame('#metricsTable');
    await frame.locator('#metricsTable', { hasText: 'exact match' }).waitFor({ timeout: 10 * 60_000 });
    timings.evaluationMs = Date.now() - started;
    log(`evaluation: ${(await frame.locator('#metricsTable').innerText()).replace(/\s+/g, ' ')}`);
    assert.equal(await frame.locator('#metricsEmpty').isHidden(), true, 'the metrics chart has a bar');
    await workbench.screenshot('evaluation-in-panel');
  });

  step('stops a training with Stop Training, then deletes that model with Delete Model', async () => {
    const page = workbench.page;
    const stopped = 'e2e-stopped';
    await page.keyboard.press('Escape');
    await workbench.runCommand('Modelwright: Train Model');
    await workbench.pick('tiny', { title: 'Train Model (1/3)' });
    await workbench.pick(`${trainingMinutes} minute`, { title: 'Train Model (2/3)' });
    await workbench.answer(stopped);
    await workbench.notification(/step \d+\/\d+/).waitFor({ timeout: 120_000 });
    await workbench.runCommand('Modelwright: Stop Training');
    await workbench.notification(`Training ${stopped} stopped`).waitFor({ timeout: 120_000 });
    await workbench.screenshot('training-stopped');
    await workbench.showContainer();
    const row = page.locator('.sidebar .monaco-list-row', { hasText: stopped });
    await row.waitFor({ timeout: 20_000 });
    await sleep(2000); // the registry lists the stopped model as idle once its folder is written
    await workbench.runCommand('Modelwright: Delete Model');
    await workbench.pick(stopped);
    const dialog = page.locator('.monaco-dialog-box', { hasText: `Delete the model ${stopped}?` });
    await dialog.waitFor({ timeout: 10_000 });
    await workbench.screenshot('delete-model-confirm');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached', timeout: 20_000 });
    assert.ok(!fs.existsSync(path.join(root, 'models', stopped)), 'the folder is gone');
    await workbench.screenshot('model-deleted');
    await page.locator('.tabs-container .tab', { hasText: 'example.ts' }).first().click();
  });

  step('explains a selection in a Markdown preview, and names the model at the end', async () => {
    const page = workbench.page;
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+Home');
    for (let i = 0; i < 5; i++) await page.keyboard.press('Shift+ArrowDown');
    const started = Date.now();
    await page.keyboard.press('Control+Alt+E');
    // The explanation opens rendered (the Markdown preview, a webview beside the code), not as Markdown source.
    await page
      .locator('.tabs-container .tab', { hasText: 'Preview Explanation of example.ts' })
      .waitFor({ timeout: 20_000 });
    const preview = (await workbench.webviewFrame('.markdown-body', 30_000)).locator('.markdown-body');
    // Record what the preview shows while it streams, until the waiting line has gone and the text has been still
    // for 2 s (the first words can take longer than that when the server is still busy with the last step).
    const states = new Set<string>();
    let last = '';
    let stillSince = Date.now();
    const waiting = () => last === '' || last.includes('Explaining example.ts');
    while ((waiting() || Date.now() - stillSince < 2000) && Date.now() - started < 120_000) {
      const text = (await preview.innerText().catch(() => '')).replace(/\u00a0/g, ' ');
      if (text !== last) {
        states.add(text);
        last = text;
        stillSince = Date.now();
      }
      await sleep(25);
    }
    timings.explanationMs = Date.now() - started - 2000;
    timings.explanationStates = states.size;
    log(`explanation (${states.size} states while streaming): ${JSON.stringify(last.slice(0, 400))}`);
    assert.ok(!last.includes('Explaining example.ts'), 'the explanation replaced the waiting line');
    assert.match(last, /lines 1–5/);
    assert.ok(last.length > 100, 'the explanation has text');
    // The preview re-renders its document at its own pace, so a fast explanation may appear in one piece; the
    // streaming itself is checked at the protocol level (test/server/explain.test.ts).
    assert.match(last, /Explained by \S+/, 'the end names the model that wrote it');
    // Rendered: the Markdown rule and emphasis are elements, not the characters `---` and `_`.
    assert.ok((await preview.locator('hr').count()) >= 1, 'the rule is rendered');
    assert.ok(!last.includes('_Explained by'), 'emphasis is rendered, not shown as underscores');
    await workbench.screenshot('explanation');
    assert.equal(
      await page.locator('.editor-group-container.active .tab.active', { hasText: 'example.ts' }).count(),
      1,
      'the code keeps the focus',
    );
    await preview.locator('hr').last().scrollIntoViewIfNeeded();
    await workbench.screenshot('explanation-end');
  });

  step('the @modelwright chat participant, where this build has a chat view', async () => {
    const page = workbench.page;
    await page.keyboard.press('F1');
    await workbench.quickInput().fill('>Chat: Open Chat');
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: /Open Chat/ }).first();
    const hasChat = await row.waitFor({ timeout: 5000 }).then(
      () => true,
      () => false,
    );
    timings.chatView = hasChat ? 'present' : 'absent';
    if (!hasChat) {
      // code-server builds VS Code without a default chat agent, so it shows no chat view; the participant's
      // handler is tested with fakes (test/client/chat.test.ts).
      log('this code-server has no chat view: @modelwright is tested with fakes of the chat API');
      await workbench.screenshot('no-chat-view');
      await page.keyboard.press('Escape');
      return;
    }
    await page.keyboard.press('Enter');
    const input = page.locator('.interactive-input-part .monaco-editor').first();
    if (
      !(await input.waitFor({ timeout: 15_000 }).then(
        () => true,
        () => false,
      ))
    ) {
      timings.chatView = 'command without a chat input';
      log('Open Chat showed no chat input here: @modelwright is tested with fakes of the chat API');
      await workbench.screenshot('no-chat-input');
      return;
    }
    await page.locator('.tabs-container .tab', { hasText: 'example.ts' }).first().click();
    await input.click();
    await page.keyboard.type('@modelwright /explain', { delay: 20 });
    await page.keyboard.press('Enter');
    const response = page.locator('.interactive-response', { hasText: 'explained by' }).last();
    await response.waitFor({ timeout: 120_000 });
    await workbench.screenshot('chat-participant');
  });

  step('restarts the language server when it dies, and keeps the deployed model', async () => {
    const page = workbench.page;
    const before = languageServerPids();
    assert.equal(before.length, 1, `one language server runs (found ${before.join(', ') || 'none'})`);
    process.kill(before[0], 'SIGKILL');
    const started = Date.now();
    const deadline = started + 60_000;
    let after: number[] = [];
    while (Date.now() < deadline && !(after = languageServerPids().filter((pid) => pid !== before[0])).length)
      await sleep(200);
    assert.equal(after.length, 1, 'a new language server was started');
    await workbench.statusItem().filter({ hasText: trainedModel }).waitFor({ timeout: 60_000 });
    timings.restartMs = Date.now() - started;
    assert.match(extensionLog(), /stopped unexpectedly; restarting it \(restart 1\)/);
    await page.locator('.tabs-container .tab', { hasText: 'example.ts' }).first().click();
    await page.keyboard.press('Control+End');
    log(`after the restart, the deployed model: ${await modelAnswersTyping(trainedModel)}`);
    await workbench.screenshot('after-server-restart');
  });

  step('in Restricted Mode completes with the bundled model and offers no training or deploying', async () => {
    await workbench.page.close();
    await codeServer!.stop();
    codeServer!.workspaceTrust = true;
    await codeServer!.start();
    codeServer!.workspaceTrust = false;
    workbench = new Workbench(
      await browser!.newPage({ viewport: { width: 1440, height: 900 } }),
      artifacts,
      workbench.shotCount,
    );
    const page = workbench.page;
    await page.goto(codeServer!.url);
    const distrust = page.getByRole('button', { name: /No, I don.t trust/ });
    await distrust.waitFor({ timeout: 60_000 });
    await workbench.screenshot('restricted-mode-prompt');
    await distrust.click();
    await workbench.openFile('example.ts');
    // The deployed model is a workspace-trained folder: restricted, the server falls back to the bundled one.
    await workbench.statusItem().filter({ hasText: 'default' }).waitFor({ timeout: 60_000 });
    await page.keyboard.press('Control+End');
    assert.ok(await someGhostText(probeLines), 'ghost text from the bundled model in Restricted Mode');
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    await workbench.quickInput().fill('>Modelwright: ');
    await page
      .locator('.quick-input-widget .monaco-list-row', { hasText: 'Explain Selection' })
      .first()
      .waitFor({ timeout: 10_000 });
    const offered = await page.locator('.quick-input-widget .monaco-list-row').allInnerTexts();
    log(`Restricted Mode palette: ${offered.map((t) => t.split('\n')[0]).join(' | ')}`);
    assert.ok(!offered.some((t) => /Train Model|Deploy Model/.test(t)), 'no Train or Deploy in the palette');
    await workbench.screenshot('restricted-mode');
    await page.keyboard.press('Escape');
  });

  step('measures the same keystrokes against a server that answers at once (the harness floor)', async () => {
    const instant = path.join(root, 'instantServer.js');
    buildSync({
      entryPoints: [path.join(__dirname, 'instantServer.ts')],
      outfile: instant,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      logLevel: 'warning',
    });
    await workbench.page.close();
    await codeServer!.stop();
    await codeServer!.start({ MODELWRIGHT_SERVER_MODULE: instant });
    workbench = new Workbench(
      await browser!.newPage({ viewport: { width: 1440, height: 900 } }),
      artifacts,
      workbench.shotCount,
    );
    await workbench.page.goto(codeServer!.url);
    await workbench.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await workbench.openFile('example.ts');
    await workbench.statusItem().filter({ hasText: 'instant' }).waitFor({ timeout: 60_000 });
    await workbench.page.keyboard.press('Control+End');
    const samples = await measureLatency('instantServer');
    assert.ok(samples.length >= 10, 'the instant server always suggests');
    timings.modelOverInstantP50 = (timings.keystrokeToGhostP50 as number) - (timings.instantServerP50 as number);
    await workbench.screenshot('instant-server-baseline');
  });
});
