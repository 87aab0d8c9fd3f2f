// What the status bar item says: the client's state (starting, restarting, stopped), the active model, the last
// completion latency and a running training. Pure, so the wording is tested without VS Code.
import type { ServerStatus } from '../../server/src/protocol';
import { describeTraining, trainingFraction } from './format';

export type ConnectionState = 'starting' | 'running' | 'restarting' | 'stopped';

export interface StatusInput {
  connection: ConnectionState;
  server?: ServerStatus;
  trusted: boolean;
  restarts: number;
}

export interface StatusView {
  text: string;
  /** Markdown. */
  tooltip: string;
  severity: 'normal' | 'warning' | 'error';
  /** What clicking the item runs. */
  command: 'selectModel' | 'showLogs' | 'showTraining';
}

export function statusView(s: StatusInput): StatusView {
  const untrusted = s.trusted
    ? ''
    : '\n\nRestricted mode: only the bundled models are used; training and deploying are off.';
  if (s.connection === 'stopped') {
    return {
      text: '$(error) Modelwright',
      tooltip: `The Modelwright language server stopped. Click to see its log.${untrusted}`,
      severity: 'error',
      command: 'showLogs',
    };
  }
  if (s.connection === 'restarting') {
    return {
      text: '$(sync~spin) Modelwright',
      tooltip: `The language server stopped unexpectedly and is restarting (restart ${s.restarts}).`,
      severity: 'warning',
      command: 'showLogs',
    };
  }
  const server = s.server;
  if (s.connection === 'starting' || !server || server.health === 'starting') {
    return {
      text: '$(loading~spin) Modelwright',
      tooltip: `Modelwright is starting: ${server?.message ?? 'loading the language server'}${untrusted}`,
      severity: 'normal',
      command: 'showLogs',
    };
  }
  if (server.health === 'error') {
    return {
      text: '$(warning) Modelwright',
      tooltip: `Modelwright: ${server.message ?? 'error'}. Click to see the log.${untrusted}`,
      severity: 'warning',
      command: 'showLogs',
    };
  }
  const local = server.active.completion ?? 'no model';
  const remote = server.remote?.completion;
  const model = remote && remote.state !== 'down' ? remote.model : local;
  const latency = server.lastCompletionMs !== undefined ? ` · ${Math.round(server.lastCompletionMs)} ms` : '';
  const lines = [
    `**Modelwright**`,
    `Completion model: \`${model}\`${remote && remote.state !== 'down' ? ` at ${remote.url}` : ''}`,
    `Explanation model: \`${server.active.explanation ?? local}\``,
  ];
  const remoteDown = remoteRoleLines(server, lines);
  if (server.lastCompletionMs !== undefined) lines.push(`Last completion: ${Math.round(server.lastCompletionMs)} ms`);
  if (server.message) lines.push(server.message);
  const t = server.training;
  if (t && t.phase !== 'done' && t.phase !== 'failed') {
    lines.push(`Training \`${t.name}\`: ${describeTraining(t)}`);
    return {
      text: `$(loading~spin) ${model}${latency} · training ${Math.round(trainingFraction(t) * 100)}%`,
      tooltip: lines.join('\n\n') + untrusted,
      severity: 'normal',
      command: 'showTraining',
    };
  }
  if (s.restarts > 0) lines.push(`The language server was restarted ${s.restarts} time${s.restarts === 1 ? '' : 's'}.`);
  lines.push('Click to select a model.');
  const icon = remote?.state === 'down' ? '$(cloud-offline)' : remote ? '$(cloud)' : '$(sparkle)';
  return {
    text: `${icon} ${model}${latency}`,
    tooltip: lines.join('\n\n') + untrusted,
    severity: remoteDown ? 'warning' : 'normal',
    command: 'selectModel',
  };
}

/** Adds a line per role whose remote endpoint is down (or explains remotely); true when one is down. */
function remoteRoleLines(server: ServerStatus, lines: string[]): boolean {
  let down = false;
  for (const role of ['completion', 'explanation'] as const) {
    const remote = server.remote?.[role];
    if (!remote) continue;
    if (remote.state !== 'down') {
      if (role === 'explanation') lines[2] = `Explanation model: \`${remote.model}\` at ${remote.url}`;
      continue;
    }
    down = true;
    const retry = remote.retryAt ? `; tried again at ${new Date(remote.retryAt).toLocaleTimeString()}` : '';
    lines.push(
      `$(cloud-offline) The remote ${role} endpoint ${remote.url} is not answering (${remote.error ?? 'error'}): ` +
        `the local model serves ${role}s${retry}.`,
    );
  }
  return down;
}
