// Turns failures into clear LSP errors: registry errors (unknown model, bad name, load failure, forbidden in an
// untrusted workspace) and invalid parameters become ResponseErrors with codes a client can tell apart.
import { ErrorCodes, LSPErrorCodes, ResponseError } from 'vscode-languageserver';
import { RegistryError } from '../registry/registryError';

export function invalidParams(message: string): ResponseError<void> {
  return new ResponseError(ErrorCodes.InvalidParams, message);
}

export function requestFailed(message: string): ResponseError<void> {
  return new ResponseError(LSPErrorCodes.RequestFailed, message);
}

export function toResponseError(error: unknown): ResponseError<void> {
  if (error instanceof ResponseError) return error;
  if (error instanceof RegistryError) {
    return error.code === 'unknownModel' || error.code === 'invalidName'
      ? invalidParams(error.message)
      : requestFailed(error.message);
  }
  return requestFailed(error instanceof Error ? error.message : String(error));
}

/** Runs a request handler so that every failure reaches the client as a ResponseError. */
export async function answering<T>(handler: () => Promise<T>): Promise<T> {
  try {
    return await handler();
  } catch (e) {
    throw toResponseError(e);
  }
}
