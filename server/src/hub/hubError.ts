// The one error type of `modelwright pull`: a `code` that callers (CLI, extension) can branch on and a message
// written for a person, naming the repository, the endpoint or the file concerned and what to do about it.

export type HubErrorCode =
  | 'InvalidArgument'
  | 'RepoNotFound'
  | 'RevisionNotFound'
  | 'AccessDenied'
  | 'FileNotFound'
  | 'NoWeights'
  | 'DiskFull'
  | 'NetworkError'
  | 'ChecksumMismatch'
  | 'OfflineNotCached'
  | 'BadResponse'
  | 'Cancelled';

/** The command (and its palette title) that stores a token for the extension. */
export const SET_TOKEN_HINT = 'set HF_TOKEN or run "Modelwright: Set Hugging Face Token"';

export class HubError extends Error {
  override readonly name = 'HubError';

  constructor(
    readonly code: HubErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isHubError(error: unknown, code?: HubErrorCode): error is HubError {
  return error instanceof HubError && (code === undefined || error.code === code);
}
