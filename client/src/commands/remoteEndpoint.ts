// The Set Remote Endpoint Key… command: asks for which role (or both) and the key, and keeps it in the editor's
// secret storage; the language server gets it at once and sends it as a Bearer token to that role's endpoint only.
import * as vscode from 'vscode';
import { type ModelRole, modelRoles } from '../../../server/src/protocol';
import type { CommandContext, CommandHandlers } from './commandContext';

export function remoteEndpointCommands(context: CommandContext): CommandHandlers<'setRemoteEndpointKey'> {
  async function setRemoteEndpointKey(): Promise<void> {
    const keys = context.endpointKeys.current;
    const choice = await vscode.window.showQuickPick(
      [
        ...modelRoles.map((role) => ({
          label: role === 'completion' ? 'Completion endpoint' : 'Explanation endpoint',
          description: keys[role] ? 'a key is set' : undefined,
          roles: [role],
        })),
        { label: 'Both endpoints', description: undefined, roles: [...modelRoles] },
      ],
      { title: 'Set Remote Endpoint Key', placeHolder: 'Which remote endpoint is the key for?' },
    );
    if (!choice) return;
    const roles: ModelRole[] = choice.roles;
    const value = await vscode.window.showInputBox({
      title: `Set Remote Endpoint Key: ${choice.label}`,
      prompt:
        'The API key the server expects as "Authorization: Bearer KEY". Kept in the editor’s secret storage and ' +
        'sent to that endpoint only. Leave empty to remove the key.',
      placeHolder: roles.some((r) => keys[r]) ? 'a key is set: enter a new one, or nothing to remove it' : 'API key',
      password: true,
      ignoreFocusOut: true,
      validateInput: (text) => (/\s/.test(text.trim()) ? 'A key has no spaces' : undefined),
    });
    if (value === undefined) return;
    for (const role of roles) await context.endpointKeys.set(role, value);
    const set = value.trim() !== '';
    const which = roles.join(' and ');
    context.log.info(
      set ? `A remote endpoint key was stored for ${which}` : `The remote endpoint key of ${which} was removed`,
    );
    void vscode.window.showInformationMessage(
      set
        ? `Modelwright will send this key to the remote ${which} endpoint.`
        : `The ${which} endpoint key was removed.`,
    );
  }

  return { setRemoteEndpointKey };
}
