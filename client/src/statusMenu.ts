// The menu the status bar item opens: the active model (to select another), pause or resume inline completions,
// the panel, a running training's stop, the logs, the walkthrough and what is sent (nothing). Pure, so the items
// are tested without VS Code; commands/menu.ts shows them.
import type { ServerStatus } from '../../server/src/protocol';
import type { CommandName } from './commandIds';
import type { ConnectionState } from './statusText';

/** The walkthrough's id as `workbench.action.openWalkthrough` takes it: `<publisher>.<name>#<walkthrough id>`. */
export const walkthroughId = 'modelwright.modelwright#gettingStarted';

export interface MenuInput {
  connection: ConnectionState;
  server?: ServerStatus;
  completionsEnabled: boolean;
  trusted: boolean;
  /** VS Code's `env.isTelemetryEnabled`. */
  telemetryEnabled: boolean;
}

export interface MenuItem {
  label: string;
  description?: string;
  detail?: string;
  /** What choosing it runs; undefined for an item that only informs. */
  command?: CommandName;
}

/** What the model item says before the server names a model. */
const modelPlaceholder: Record<ConnectionState, string> = {
  running: 'none',
  starting: 'starting…',
  restarting: 'restarting…',
  stopped: 'none (the language server stopped)',
};

export function statusMenu(input: MenuInput): MenuItem[] {
  const items: MenuItem[] = [];
  const server = input.server;
  if (input.connection === 'stopped')
    items.push({ label: '$(debug-restart) Restart the language server', command: 'restartServer' });
  const completion = server?.active.completion;
  items.push({
    label: `$(sparkle) Model: ${completion ?? modelPlaceholder[input.connection]}`,
    description:
      server?.active.explanation && server.active.explanation !== completion
        ? `explanations: ${server.active.explanation}`
        : undefined,
    detail: 'Select the model this workspace uses',
    command: 'selectModel',
  });
  items.push(
    input.completionsEnabled
      ? { label: '$(debug-pause) Pause inline completions', command: 'toggleCompletions' }
      : { label: '$(play) Resume inline completions', description: 'paused', command: 'toggleCompletions' },
  );
  items.push({ label: '$(graph-line) Open the Modelwright panel', command: 'showTraining' });
  const training = server?.training;
  if (training && training.phase !== 'done' && training.phase !== 'failed')
    items.push({ label: `$(debug-stop) Stop training ${training.name}`, command: 'stopTraining' });
  items.push({ label: '$(output) Show logs', command: 'showLogs' });
  items.push({ label: '$(book) Get started', description: 'walkthrough', command: 'openWalkthrough' });
  items.push({ label: '$(shield) Privacy', description: privacyNote(input.telemetryEnabled) });
  return items;
}

/** What Modelwright sends, whatever VS Code's telemetry setting says: nothing. */
export function privacyNote(telemetryEnabled: boolean): string {
  return (
    'Modelwright sends no telemetry' +
    (telemetryEnabled ? ' (even with VS Code telemetry on)' : ' (VS Code telemetry is off too)') +
    '; models run on this machine.'
  );
}
