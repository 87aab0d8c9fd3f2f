// Tests for LSP cancellation as an AbortSignal: a token cancelled later aborts the signal, one cancelled before
// gives an aborted signal, and dispose stops listening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancellationTokenSource, LSPErrorCodes } from 'vscode-languageserver';
import { abortSignalFrom, requestCancelled } from '../../server/src/util/cancellation';

test('cancelling the token aborts the signal', () => {
  const source = new CancellationTokenSource();
  const { signal } = abortSignalFrom(source.token);
  assert.equal(signal.aborted, false);
  source.cancel();
  assert.equal(signal.aborted, true);
});

test('an already cancelled token, no token, and dispose', () => {
  const cancelled = new CancellationTokenSource();
  cancelled.cancel();
  assert.equal(abortSignalFrom(cancelled.token).signal.aborted, true);
  assert.equal(abortSignalFrom(undefined).signal.aborted, false);
  const source = new CancellationTokenSource();
  const listening = abortSignalFrom(source.token);
  listening.dispose();
  source.cancel();
  assert.equal(listening.signal.aborted, false);
  assert.equal(requestCancelled().code, LSPErrorCodes.RequestCancelled);
});
