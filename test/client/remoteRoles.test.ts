// Tests the client side of remote roles: the `modelwright.remote.<role>.*` settings read through the protocol
// (defaults, trimming, unknown protocols, the time limit clamped to numericSettings), and what the status bar says
// while a role's remote endpoint serves it and while it is down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ServerStatus, defaultSettings, numericSettings, settingsFrom } from '../../server/src/protocol';
import { readSettings } from '../../client/src/config';
import { statusView } from '../../client/src/statusText';

const reader = (values: Record<string, unknown>) => ({ get: <T>(key: string) => values[key] as T | undefined });

test('remote settings: none by default, values trimmed, unknown protocols and bad timeouts replaced', () => {
  assert.deepEqual(readSettings(reader({})).remote, defaultSettings.remote);
  assert.equal(defaultSettings.remote.completion.url, '');
  const s = settingsFrom(
    (key) =>
      ({
        'remote.completion.url': ' http://gpu:8000 ',
        'remote.completion.protocol': 'grpc',
        'remote.completion.model': ' coder ',
        'remote.completion.timeoutMs': 5,
        'remote.explanation.protocol': 'oip',
        'remote.explanation.modelDir': 'default',
        'remote.explanation.timeoutMs': 'soon',
      })[key],
  );
  assert.deepEqual(s.remote.completion, {
    url: 'http://gpu:8000',
    protocol: 'openai',
    model: 'coder',
    modelDir: '',
    timeoutMs: numericSettings['remote.completion.timeoutMs'].minimum,
  });
  assert.equal(s.remote.explanation.protocol, 'oip');
  assert.equal(s.remote.explanation.modelDir, 'default');
  assert.equal(s.remote.explanation.timeoutMs, numericSettings['remote.explanation.timeoutMs'].default);
});

const ready: ServerStatus = { health: 'ready', active: { completion: 'default' }, lastCompletionMs: 40 };

test('a remote completion endpoint that answers is shown as the completion model', () => {
  const v = statusView({
    connection: 'running',
    server: { ...ready, remote: { completion: { url: 'http://gpu:8000', model: 'coder-7b', state: 'up' } } },
    trusted: true,
    restarts: 0,
  });
  assert.equal(v.text, '$(cloud) coder-7b · 40 ms');
  assert.equal(v.severity, 'normal');
  assert.match(v.tooltip, /Completion model: `coder-7b` at http:\/\/gpu:8000/);
});

test('a remote endpoint that is down: the local model, a warning and the reason', () => {
  const v = statusView({
    connection: 'running',
    server: {
      ...ready,
      remote: {
        explanation: {
          url: 'http://gpu:8000',
          model: 'chat-7b',
          state: 'down',
          error: 'no answer within 5000 ms',
          retryAt: new Date().toISOString(),
        },
        completion: { url: 'http://gpu:8000', model: 'coder-7b', state: 'down', error: 'connection refused' },
      },
    },
    trusted: true,
    restarts: 0,
  });
  assert.equal(v.text, '$(cloud-offline) default · 40 ms');
  assert.equal(v.severity, 'warning');
  assert.match(v.tooltip, /remote completion endpoint http:\/\/gpu:8000 is not answering \(connection refused\)/);
  assert.match(v.tooltip, /remote explanation endpoint .*no answer within 5000 ms.*tried again at/);
});
