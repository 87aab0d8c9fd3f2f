// LSP cancellation ($/cancelRequest → CancellationToken) as an AbortSignal, which generate() checks between
// tokens, so a cancelled completion stops decoding mid-way instead of running to its token limit.
import { type CancellationToken, LSPErrorCodes, ResponseError } from 'vscode-languageserver';

export interface TokenSignal {
  signal: AbortSignal;
  /** Stops listening to the token (call when the request is done). */
  dispose(): void;
}

export function abortSignalFrom(token: CancellationToken | undefined): TokenSignal {
  const controller = new AbortController();
  if (!token) return { signal: controller.signal, dispose: () => {} };
  if (token.isCancellationRequested) {
    controller.abort();
    return { signal: controller.signal, dispose: () => {} };
  }
  const listener = token.onCancellationRequested(() => controller.abort());
  return { signal: controller.signal, dispose: () => listener.dispose() };
}

/** The LSP error for a request the client cancelled. */
export function requestCancelled(detail = 'request cancelled'): ResponseError<void> {
  return new ResponseError(LSPErrorCodes.RequestCancelled, detail);
}
