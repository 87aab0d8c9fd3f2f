// What the features share: the connection, the open documents, the model registry, settings, status, progress,
// the workspace files for grounding, and a logger that writes to the client's output (never to stdout).
import type { Connection, TextDocuments } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { InitializationOptions } from '../protocol';
import type { ModelRegistry } from '../registry/modelRegistry';
import type { WorkspaceFiles } from '../explanation/workspaceFiles';
import type { SettingsFeature } from './settings';
import type { StatusFeature } from './status';
import type { WorkDoneProgressFeature } from './workDoneProgress';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Per-request details (latency, tokens); shown by clients at their most verbose level. */
  debug(message: string): void;
}

export interface ServerContext {
  connection: Connection;
  documents: TextDocuments<TextDocument>;
  registry: ModelRegistry;
  settings: SettingsFeature;
  status: StatusFeature;
  progress: WorkDoneProgressFeature;
  workspaceFiles: WorkspaceFiles;
  options: InitializationOptions;
  log: Logger;
}
