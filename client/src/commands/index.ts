// Registers every command of the extension: the handlers of the command groups together (the type makes a
// command without a handler an error), each wrapped so that a failure is logged and shown with Show Logs.
import * as vscode from 'vscode';
import { type CommandName, commandIds } from '../commandIds';
import type { CommandArgument, CommandContext, CommandHandler } from './commandContext';
import { evaluationAndDeploymentCommands } from './evaluationAndDeployment';
import { explanationCommands } from './explanation';
import { hubCommands } from './hub';
import { menuCommands } from './menu';
import { modelCommands } from './models';
import { remoteEndpointCommands } from './remoteEndpoint';
import { trainingCommands } from './training';

export type { CommandContext } from './commandContext';

export function registerCommands(context: CommandContext): vscode.Disposable[] {
  const handlers: Record<CommandName, CommandHandler> = {
    ...trainingCommands(context),
    ...evaluationAndDeploymentCommands(context),
    ...explanationCommands(context),
    ...modelCommands(context),
    ...hubCommands(context),
    ...remoteEndpointCommands(context),
    ...menuCommands(context),
  };
  return (Object.keys(handlers) as CommandName[]).map((name) =>
    vscode.commands.registerCommand(commandIds[name], async (...args: unknown[]) => {
      try {
        // Server-made commands (the explain code action) pass several arguments; the rest pass at most one.
        return await handlers[name]((name === 'explain' ? args : args[0]) as CommandArgument);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        context.log.error(`${commandIds[name]} failed: ${message}`);
        void vscode.window
          .showErrorMessage(`Modelwright: ${message}`, 'Show Logs')
          .then((choice) => choice && context.log.show());
      }
    }),
  );
}
