// Tests what the status bar item says in each state of the client and the server (client/src/statusText.ts):
// starting, running with a model and latency, training, restarting after a crash, stopped, untrusted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServerStatus } from '../../server/src/protocol';
import { statusView } from '../../client/src/statusText';

const ready: ServerStatus = {
  health: 'ready',
  active: { completion: 'default', explanation: 'default' },
  lastCompletionMs: 23.6,
};

test('running: the active model and the last completion latency', () => {
  const v = statusView({ connection: 'running', server: ready, trusted: true, restarts: 0 });
  assert.equal(v.text, '$(sparkle) default · 24 ms');
  assert.equal(v.command, 'selectModel');
  assert.equal(v.severity, 'normal');
  assert.match(v.tooltip, /Completion model: `default`/);
  assert.match(v.tooltip, /Last completion: 24 ms/);
});

test("the server's latest message (e.g. the HTTP service URL) is in the tooltip", () => {
  const v = statusView({
    connection: 'running',
    server: { ...ready, message: 'serving mine at http://127.0.0.1:4000' },
    trusted: true,
    restarts: 0,
  });
  assert.match(v.tooltip, /serving mine at http:\/\/127\.0\.0\.1:4000/);
});

test('before the first completion there is no latency', () => {
  const v = statusView({
    connection: 'running',
    server: { ...ready, lastCompletionMs: undefined },
    trusted: true,
    restarts: 0,
  });
  assert.equal(v.text, '$(sparkle) default');
});

test('training shows its progress and clicking opens the Training panel', () => {
  const v = statusView({
    connection: 'running',
    server: {
      ...ready,
      training: {
        name: 'mine',
        phase: 'training',
        message: '',
        step: 50,
        totalSteps: 200,
        loss: 3.1,
        elapsedSeconds: 10,
      },
    },
    trusted: true,
    restarts: 0,
  });
  assert.equal(v.text, '$(loading~spin) default · 24 ms · training 25%');
  assert.equal(v.command, 'showTraining');
  assert.match(v.tooltip, /Training `mine`: step 50\/200 · loss 3\.100/);
  const done = statusView({
    connection: 'running',
    server: {
      ...ready,
      training: { name: 'mine', phase: 'done', message: '', step: 200, totalSteps: 200, elapsedSeconds: 60 },
    },
    trusted: true,
    restarts: 0,
  });
  assert.equal(done.text, '$(sparkle) default · 24 ms');
});

test('starting, restarting, stopped and server errors', () => {
  assert.equal(statusView({ connection: 'starting', trusted: true, restarts: 0 }).text, '$(loading~spin) Modelwright');
  assert.match(
    statusView({
      connection: 'running',
      server: { health: 'starting', message: 'loading default', active: {} },
      trusted: true,
      restarts: 0,
    }).tooltip,
    /loading default/,
  );
  const restarting = statusView({ connection: 'restarting', trusted: true, restarts: 2 });
  assert.equal(restarting.severity, 'warning');
  assert.match(restarting.tooltip, /restart 2/);
  const stopped = statusView({ connection: 'stopped', trusted: true, restarts: 5 });
  assert.equal(stopped.severity, 'error');
  assert.equal(stopped.command, 'showLogs');
  const error = statusView({
    connection: 'running',
    server: { health: 'error', message: 'model folder unreadable', active: {} },
    trusted: true,
    restarts: 0,
  });
  assert.equal(error.text, '$(warning) Modelwright');
  assert.match(error.tooltip, /model folder unreadable/);
  assert.match(
    statusView({ connection: 'running', server: ready, trusted: true, restarts: 1 }).tooltip,
    /restarted 1 time\./,
  );
});

test('restricted mode is explained in the tooltip', () => {
  assert.match(
    statusView({ connection: 'running', server: ready, trusted: false, restarts: 0 }).tooltip,
    /Restricted mode: only the bundled models/,
  );
  assert.doesNotMatch(
    statusView({ connection: 'running', server: ready, trusted: true, restarts: 0 }).tooltip,
    /Restricted/,
  );
});
