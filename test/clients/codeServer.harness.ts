// The harness of the end-to-end test in a real VS Code: installs the tools (codeServer.install.sh), starts one
// code-server on a free loopback port with its own user data, extensions and settings, drives it with headless
// Chromium through playwright-core, saves screenshots, and stops everything it started (by process group).
/// <reference lib="dom" />
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { type Browser, chromium, type Frame, type Page } from 'playwright-core';

export const repositoryRoot = path.resolve(__dirname, '../..');

/** Chromium as real-clients.md measured it works here: headless, no sandbox (root), no background networking. */
const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function log(message: string): void {
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

/** Installs (once, cached) code-server and Chromium; returns the code-server executable. */
export function installTools(): string {
  const script = path.join(__dirname, 'codeServer.install.sh');
  return execFileSync('bash', [script], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 15 * 60_000,
  })
    .trim()
    .split('\n')
    .pop() as string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface CodeServerOptions {
  executable: string;
  /** Scratch folder of this run: user data, extensions, logs. */
  root: string;
  workspace: string;
  settings: Record<string, unknown>;
}

export class CodeServer {
  private process: ChildProcess | undefined;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  port = 0;

  constructor(private readonly options: CodeServerOptions) {
    this.userDataDir = path.join(options.root, 'user-data');
    this.extensionsDir = path.join(options.root, 'extensions');
    for (const dir of ['User', 'Machine']) {
      fs.mkdirSync(path.join(this.userDataDir, dir), { recursive: true });
      fs.writeFileSync(path.join(this.userDataDir, dir, 'settings.json'), JSON.stringify(options.settings, null, 2));
    }
    fs.mkdirSync(this.extensionsDir, { recursive: true });
  }

  /** Workspace trust off unless a test asks for it (then opening the folder asks whether to trust it). */
  workspaceTrust = false;

  private args(): string[] {
    const trust = this.workspaceTrust ? [] : ['--disable-workspace-trust'];
    return [
      '--disable-telemetry',
      '--disable-update-check',
      ...trust,
      '--user-data-dir',
      this.userDataDir,
      '--extensions-dir',
      this.extensionsDir,
    ];
  }

  private environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    // Keep code-server's own config file out of the home folder.
    return {
      ...process.env,
      XDG_CONFIG_HOME: path.join(this.options.root, 'config'),
      XDG_DATA_HOME: path.join(this.options.root, 'data'),
      ...extra,
    };
  }

  installExtension(vsix: string): void {
    execFileSync(this.options.executable, [...this.args(), '--install-extension', vsix], {
      env: this.environment(),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
  }

  /** Starts code-server (with `env` added to its environment) and waits for /healthz; returns the milliseconds that took. */
  async start(env: Record<string, string> = {}): Promise<number> {
    this.port = await freePort();
    const started = Date.now();
    const logFile = fs.openSync(path.join(this.options.root, 'code-server.log'), 'a');
    this.process = spawn(
      this.options.executable,
      ['--bind-addr', `127.0.0.1:${this.port}`, '--auth', 'none', ...this.args(), this.options.workspace],
      { env: this.environment(env), stdio: ['ignore', logFile, logFile], detached: true },
    );
    fs.closeSync(logFile);
    for (;;) {
      if (this.process.exitCode !== null)
        throw new Error(`code-server exited with ${this.process.exitCode}; see ${this.options.root}/code-server.log`);
      try {
        const response = await fetch(`http://127.0.0.1:${this.port}/healthz`);
        if (response.ok) return Date.now() - started;
      } catch {
        // not listening yet
      }
      if (Date.now() - started > 60_000) throw new Error('code-server did not answer /healthz within 60 s');
      await sleep(250);
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/?folder=${encodeURIComponent(this.options.workspace)}`;
  }

  /** Stops code-server with everything it started (extension host, language server): its process group. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child?.pid || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timedOut = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)]);
    if (timedOut) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Chromium with a fresh profile (playwright makes one in a temporary folder and removes it on close). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.MODELWRIGHT_CHROMIUM ?? '/usr/bin/chromium',
    args: chromiumArgs,
  });
}

/** Drives the VS Code workbench in a page: palette, quick picks, editor, notifications, screenshots. */
export class Workbench {
  constructor(
    readonly page: Page,
    private readonly artifacts: string,
    private shots = 0,
  ) {}

  /** How many screenshots were taken (a new page's Workbench continues the numbering). */
  get shotCount(): number {
    return this.shots;
  }

  async screenshot(name: string): Promise<string> {
    const file = path.join(this.artifacts, `${String(++this.shots).padStart(2, '0')}-${name}.png`);
    await sleep(400); // let notifications and views finish animating in
    await this.page.screenshot({ path: file });
    log(`screenshot ${path.basename(file)}`);
    return file;
  }

  quickInput() {
    return this.page.locator('.quick-input-widget .quick-input-box input');
  }

  /** Opens the quick input with `key`, types `text`, and accepts the first row that shows `row`. */
  private async quickOpen(key: string, text: string, row: string): Promise<void> {
    await this.page.keyboard.press(key);
    const input = this.quickInput();
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(text);
    await this.page
      .locator('.quick-input-widget .monaco-list-row', { hasText: row })
      .first()
      .waitFor({ timeout: 15_000 });
    await this.page.keyboard.press('Enter');
  }

  /** Runs a command from the palette by its title. */
  runCommand(title: string): Promise<void> {
    return this.quickOpen('F1', `>${title}`, title);
  }

  /** Picks the row of the open quick pick whose label matches exactly (after filtering by typing it). */
  async pick(label: string, options: { title?: string; timeout?: number } = {}): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    if (options.title)
      await widget
        .locator('.quick-input-title', { hasText: options.title })
        .waitFor({ timeout: options.timeout ?? 20_000 });
    const input = this.quickInput();
    await input.waitFor({ state: 'visible', timeout: options.timeout ?? 20_000 });
    await input.fill(label);
    const row = widget
      .locator('.monaco-list-row .label-name', { hasText: new RegExp(`^${escapeRegExp(label)}$`) })
      .first();
    await row.waitFor({ timeout: 10_000 });
    await row.click();
  }

  /** Types into the open input box (replacing its value) and accepts. */
  async answer(text: string): Promise<void> {
    const input = this.quickInput();
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(text);
    await this.page.keyboard.press('Enter');
  }

  notification(text: string | RegExp) {
    return this.page.locator('.notifications-toasts .notification-toast', { hasText: text });
  }

  statusItem() {
    return this.page.locator('.statusbar-item[id$="modelwright.status"]');
  }

  /** Opens a workspace file by name with Quick Open and waits for its editor. */
  async openFile(name: string): Promise<void> {
    await this.quickOpen('Control+P', name, name);
    await this.page.locator('.tabs-container .tab.active', { hasText: name }).waitFor({ timeout: 15_000 });
    await this.page.locator('.editor-instance .monaco-editor .view-lines').first().click();
  }

  ghostText() {
    return this.page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text');
  }

  /** The ghost text shown inside the current line (its first line; syntax coloring splits it into spans). */
  async inlineGhostText(): Promise<string> {
    const parts = await this.page
      .locator('.editor-instance .monaco-editor .view-lines .ghost-text-decoration')
      .allTextContents();
    return parts.join('').replace(/\u00a0/g, ' ');
  }

  /** The text of the current editor line (where the cursor is). */
  async currentLineText(): Promise<string> {
    return this.page.evaluate(() => {
      const editor = document.querySelector('.editor-instance .monaco-editor');
      const current = editor?.querySelector('.view-overlays .current-line');
      const lines = Array.from(editor?.querySelectorAll<HTMLElement>('.view-lines .view-line') ?? []);
      if (!current) return '';
      const top = (current.parentElement as HTMLElement).style.top;
      const line = lines.find((l) => l.style.top === top)?.cloneNode(true) as HTMLElement | undefined;
      // Ghost text is rendered inside the line: leave it out, it is not (yet) the line's text.
      for (const ghost of Array.from(line?.querySelectorAll('.ghost-text-decoration, .ghost-text') ?? []))
        ghost.remove();
      return (line?.textContent ?? '').replace(/\u00a0/g, ' ');
    });
  }

  async showContainer(): Promise<void> {
    const icon = this.page.locator('.activitybar .action-item a[aria-label^="Modelwright"]');
    await icon.waitFor({ timeout: 30_000 });
    const expanded = await icon
      .locator('xpath=..')
      .getAttribute('aria-expanded')
      .catch(() => null);
    if (expanded !== 'true' && !(await this.page.locator('.sidebar .pane-header', { hasText: 'Models' }).isVisible()))
      await icon.click();
    await this.page.locator('.sidebar .pane-header', { hasText: 'Models' }).waitFor({ timeout: 15_000 });
  }

  /** The frame that holds a webview view's content (webviews nest an iframe in an iframe). */
  async webviewFrame(hasElement: string, timeout = 30_000): Promise<Frame> {
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      for (const frame of this.page.frames()) {
        if (await frame.$(hasElement).catch(() => null)) return frame;
      }
      await sleep(250);
    }
    throw new Error(`no webview frame with ${hasElement}`);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export { percentile } from '../../server/src/util/statistics';
