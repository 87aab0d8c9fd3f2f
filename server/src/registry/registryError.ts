// The error the model registry throws, with a code that callers (the editor features) map to LSP errors: unknown
// or invalid names, folders that fail to load, what an untrusted workspace may not do, and conflicting removals.

export type RegistryErrorCode = 'unknownModel' | 'invalidName' | 'loadFailed' | 'forbidden' | 'conflict';

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly code: RegistryErrorCode,
  ) {
    super(message);
  }
}
