// What every command group is given: the typed context the commands share (the server client, the Models tree,
// the Training view, the read-only documents, the Hugging Face token and the log), the arguments a command may be
// passed, and the type of a group's handlers.
import type * as vscode from 'vscode';
import type { ExplainCommand } from '../../../server/src/protocol';
import type { CommandName } from '../commandIds';
import type { EndpointKeys } from '../endpointKey';
import type { HubToken } from '../hubToken';
import type { ModelsTreeNode, ModelsTreeProvider } from '../modelsTreeProvider';
import type { ReadOnlyDocuments } from '../readOnlyDocuments';
import type { ServerClient } from '../serverClient';
import type { TrainingView } from '../trainingView';

export interface CommandContext {
  server: ServerClient;
  tree: ModelsTreeProvider;
  trainingView: TrainingView;
  documents: ReadOnlyDocuments;
  hubToken: HubToken;
  endpointKeys: EndpointKeys;
  log: vscode.LogOutputChannel;
}

/** What a command may be passed: a tree row, the Training panel's request, or nothing (the palette). */
export type CommandArgument =
  | ModelsTreeNode
  | { source: 'trainingView'; model?: string }
  | ExplainCommand.Arguments
  | undefined;

export type CommandHandler = (argument: CommandArgument) => Promise<unknown>;

/** The handlers of one group of commands; index.ts checks that the groups together handle every command. */
export type CommandHandlers<Name extends CommandName> = Record<Name, CommandHandler>;

/** The model named by a tree row or the Training panel's request, if any. */
export function modelNameOf(argument: CommandArgument): string | undefined {
  if (!argument || typeof argument !== 'object' || Array.isArray(argument)) return undefined;
  if ('kind' in argument) return 'model' in argument ? argument.model.name : undefined;
  if ('source' in argument) return argument.model || undefined;
  return undefined;
}
