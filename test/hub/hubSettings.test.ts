// Tests for the hub settings read from options and the Python client's environment variables, the default
// models cache folder on each platform, and the progress tracker's rate, ETA and throttling.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultModelsCache, defaultPullFolder, pullFolderName } from '../../server/src/hub/defaultModelsCache';
import { DEFAULT_ENDPOINT, resolveHubSettings } from '../../server/src/hub/hubSettings';
import { formatBytes, formatDuration, type PullProgress, ProgressTracker } from '../../server/src/hub/pullProgress';

describe('resolveHubSettings', () => {
  test('defaults: huggingface.co, no token, online, 10 s timeout', () => {
    assert.deepEqual(resolveHubSettings({}, {}), {
      endpoint: DEFAULT_ENDPOINT,
      token: undefined,
      tokenSource: undefined,
      offline: false,
      timeoutMs: 10_000,
    });
    assert.equal(DEFAULT_ENDPOINT, 'https://huggingface.co');
  });

  test('reads HF_ENDPOINT, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_HUB_OFFLINE and HF_HUB_DOWNLOAD_TIMEOUT', () => {
    const env = {
      HF_ENDPOINT: 'http://127.0.0.1:9/',
      HF_TOKEN: 'hf_a',
      HF_HUB_OFFLINE: '1',
      HF_HUB_DOWNLOAD_TIMEOUT: '3',
    };
    const settings = resolveHubSettings({}, env);
    assert.equal(settings.endpoint, 'http://127.0.0.1:9');
    assert.equal(settings.token, 'hf_a');
    assert.equal(settings.tokenSource, 'HF_TOKEN');
    assert.equal(settings.offline, true);
    assert.equal(settings.timeoutMs, 3000);
    const legacy = resolveHubSettings({}, { HUGGING_FACE_HUB_TOKEN: 'hf_b' });
    assert.equal(legacy.token, 'hf_b');
    assert.equal(legacy.tokenSource, 'HUGGING_FACE_HUB_TOKEN');
    assert.equal(resolveHubSettings({}, { HF_TOKEN: 'hf_a', HUGGING_FACE_HUB_TOKEN: 'hf_b' }).token, 'hf_a');
    assert.equal(resolveHubSettings({}, { HF_TOKEN: '  ' }).token, undefined);
  });

  test('HF_HUB_OFFLINE accepts 1, true, yes, on (any case) and nothing else', () => {
    for (const value of ['1', 'true', 'TRUE', 'yes', 'Yes', 'on'])
      assert.equal(resolveHubSettings({}, { HF_HUB_OFFLINE: value }).offline, true, value);
    for (const value of ['0', 'false', 'no', '', 'offline'])
      assert.equal(resolveHubSettings({}, { HF_HUB_OFFLINE: value }).offline, false, value);
  });

  test('options win over the environment; an empty token option sends none', () => {
    const env = { HF_ENDPOINT: 'http://env', HF_TOKEN: 'hf_env', HF_HUB_OFFLINE: '1' };
    const settings = resolveHubSettings({ endpoint: 'http://option', token: 'hf_option', offline: false }, env);
    assert.equal(settings.endpoint, 'http://option');
    assert.equal(settings.token, 'hf_option');
    assert.equal(settings.tokenSource, 'option');
    assert.equal(settings.offline, false);
    assert.equal(resolveHubSettings({ token: '' }, env).token, undefined);
  });
});

describe('defaultModelsCache', () => {
  test('Linux: $XDG_CACHE_HOME (if absolute) or ~/.cache', () => {
    const home = '/home/ada';
    assert.equal(
      defaultModelsCache({ platform: 'linux', env: {}, homedir: home }),
      '/home/ada/.cache/modelwright/models',
    );
    assert.equal(
      defaultModelsCache({ platform: 'linux', env: { XDG_CACHE_HOME: '/var/cache/ada' }, homedir: home }),
      '/var/cache/ada/modelwright/models',
    );
    assert.equal(
      defaultModelsCache({ platform: 'linux', env: { XDG_CACHE_HOME: 'relative' }, homedir: home }),
      '/home/ada/.cache/modelwright/models',
    );
  });

  test('macOS: ~/Library/Caches; Windows: %LOCALAPPDATA%', () => {
    assert.equal(
      defaultModelsCache({ platform: 'darwin', env: { XDG_CACHE_HOME: '/x' }, homedir: '/Users/ada' }),
      '/Users/ada/Library/Caches/modelwright/models',
    );
    assert.equal(
      defaultModelsCache({
        platform: 'win32',
        env: { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local' },
        homedir: 'C:\\Users\\ada',
      }),
      'C:\\Users\\ada\\AppData\\Local\\modelwright\\models',
    );
    assert.equal(
      defaultModelsCache({ platform: 'win32', env: {}, homedir: 'C:\\Users\\ada' }),
      'C:\\Users\\ada\\AppData\\Local\\modelwright\\models',
    );
  });

  test('a repo folder is owner--name, with @revision unless main', () => {
    assert.equal(pullFolderName('acme/tiny'), 'acme--tiny');
    assert.equal(pullFolderName('acme/tiny', 'main'), 'acme--tiny');
    assert.equal(pullFolderName('acme/tiny', 'v1.0'), 'acme--tiny@v1.0');
    assert.equal(pullFolderName('acme/tiny', 'refs/pr/3'), 'acme--tiny@refs-pr-3');
    assert.equal(
      defaultPullFolder('acme/tiny', 'v2', { platform: 'linux', env: {}, homedir: '/home/ada' }),
      '/home/ada/.cache/modelwright/models/acme--tiny@v2',
    );
  });
});

describe('ProgressTracker', () => {
  test('rate and ETA from the bytes fetched, throttled to the interval, always reporting the end', () => {
    let now = 0;
    const events: PullProgress[] = [];
    const tracker = new ProgressTracker(
      (p) => events.push(p),
      100,
      () => now,
    );
    tracker.start(2, 3000);
    tracker.add(1000, false); // on disk already: counts as done, not towards the rate
    for (let i = 0; i < 10; i++) {
      now += 50;
      tracker.add(100, true);
    }
    const last = events.at(-1)!;
    assert.ok(events.length <= 7, `${events.length} events for 11 updates over 500 ms`);
    assert.equal(last.bytesDownloaded, 1000);
    assert.ok(Math.abs(last.bytesPerSecond - 2000) < 1, String(last.bytesPerSecond));
    assert.ok(Math.abs(last.etaSeconds! - 0.5) < 0.01, String(last.etaSeconds));
    tracker.finish();
    assert.equal(events.at(-1)!.phase, 'done');
  });

  test('formats bytes and durations', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1500), '1.50 kB');
    assert.equal(formatBytes(25_300_000), '25.3 MB');
    assert.equal(formatBytes(1_234_000_000), '1.23 GB');
    assert.equal(formatDuration(undefined), '--:--');
    assert.equal(formatDuration(75), '1:15');
    assert.equal(formatDuration(3723), '1:02:03');
  });
});
