// The contract between server.ts and each feature file: a feature looks at the client's capabilities, installs
// its handlers only for what the client supports, and returns the server capabilities it adds.
import type { ClientCapabilities, ServerCapabilities } from 'vscode-languageserver';

export interface Feature {
  /** Called during `initialize`; installs handlers and returns the capabilities to announce (possibly none). */
  initialize(capabilities: ClientCapabilities): ServerCapabilities;
  /** Called after the client's `initialized` notification (dynamic registrations, server → client requests). */
  initialized?(): void | Promise<void>;
  dispose?(): void | Promise<void>;
}
