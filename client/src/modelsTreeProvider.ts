// The Models tree in the Modelwright activity-bar container: one row per model (name, size, preset, status),
// its metrics, provenance and what its files say (where it was downloaded from, family, precision, context,
// fill-in-the-middle, chat, license) as children and in the tooltip, and context values that the manifest's
// menus match (deploy, evaluate, train further, reveal the model card, delete).
import * as vscode from 'vscode';
import type { ModelRole, ModelSummary } from '../../server/src/protocol';
import { commandIds } from './commandIds';
import { describeModel, formatTimestamp, metricRows, modelFacts, modelTooltip } from './format';
import type { ServerClient } from './serverClient';

export type ModelsTreeNode =
  | { kind: 'model'; model: ModelSummary }
  | { kind: 'detail'; model: ModelSummary; label: string; value: string; command?: vscode.Command };

export class ModelsTreeProvider implements vscode.TreeDataProvider<ModelsTreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ModelsTreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private models: ModelSummary[] = [];
  private active: Partial<Record<ModelRole, string>> = {};
  private loading: Promise<void> | undefined;
  private loaded = false;

  constructor(
    private readonly server: ServerClient,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The models as last listed by the server. */
  get current(): readonly ModelSummary[] {
    return this.models;
  }
  get activeModels(): Partial<Record<ModelRole, string>> {
    return this.active;
  }

  /** Asks the server for the models again and redraws the tree. */
  refresh(): Promise<void> {
    this.loading ??= this.server
      .listModels()
      .then((result) => {
        this.models = [...result.models].sort(
          (a, b) =>
            Number(b.bundled) - Number(a.bundled) ||
            (b.createdAt ?? '').localeCompare(a.createdAt ?? '') ||
            a.name.localeCompare(b.name),
        );
        this.active = result.active;
      })
      .catch((error: unknown) =>
        this.log.warn(`Listing models failed: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => {
        this.loaded = true;
        this.loading = undefined;
        this.changed.fire(undefined);
      });
    return this.loading;
  }

  getTreeItem(node: ModelsTreeNode): vscode.TreeItem {
    if (node.kind === 'detail') {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
      item.description = node.value;
      item.tooltip = `${node.label}: ${node.value}`;
      item.contextValue = 'modelDetail';
      item.command = node.command;
      return item;
    }
    const m = node.model;
    const listed = m.path !== ''; // unlisted: a first training whose folder does not exist yet
    const item = new vscode.TreeItem(
      m.name,
      listed ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
    );
    item.id = `model:${m.name}`;
    item.description = listed ? describeModel(m) : 'training…';
    item.iconPath = new vscode.ThemeIcon(
      m.status === 'active' ? 'pass-filled' : m.status === 'training' ? 'loading~spin' : 'circle-large-outline',
      m.status === 'active' ? new vscode.ThemeColor('charts.green') : undefined,
    );
    item.tooltip = new vscode.MarkdownString(modelTooltip(m));
    // Space-separated flags, matched by `viewItem =~ /\bflag\b/` in the manifest's menus.
    const flags = ['model', m.bundled ? 'bundled' : 'trained', m.status];
    if (!m.bundled && m.status === 'idle') flags.push('deletable');
    item.contextValue = listed ? flags.join(' ') : 'modelInTraining';
    return item;
  }

  getChildren(node?: ModelsTreeNode): ModelsTreeNode[] {
    if (!node) {
      if (!this.loaded) void this.refresh();
      const nodes: ModelsTreeNode[] = this.models.map((model) => ({ kind: 'model', model }));
      // A model in its first training has no folder yet: show it as training until it is listed.
      const training = this.server.lastStatus?.training;
      if (
        training &&
        (training.phase === 'preparing' || training.phase === 'training' || training.phase === 'saving') &&
        !this.models.some((m) => m.name === training.name)
      ) {
        nodes.push({
          kind: 'model',
          model: {
            name: training.name,
            path: '',
            kind: 'causal-lm',
            bundled: false,
            sizeBytes: 0,
            status: 'training',
            roles: [],
          },
        });
      }
      return nodes;
    }
    if (node.kind !== 'model') return [];
    const m = node.model;
    const details: ModelsTreeNode[] = [];
    const detail = (label: string, value: string, command?: vscode.Command) =>
      details.push({ kind: 'detail', model: m, label, value, command });
    if (m.roles.length) detail('deployed for', m.roles.join(', '));
    if (m.metrics) for (const [label, value] of metricRows(m.metrics)) detail(label, value);
    else
      detail('metrics', 'not evaluated yet: click to evaluate', {
        title: 'Evaluate',
        command: commandIds.evaluate,
        arguments: [node],
      });
    for (const [label, value] of modelFacts(m)) detail(label, value);
    if (m.parent) detail('fine-tuned from', m.parent);
    if (m.createdAt) detail('created', formatTimestamp(m.createdAt));
    return details;
  }

  getParent(node: ModelsTreeNode): ModelsTreeNode | undefined {
    return node.kind === 'detail' ? { kind: 'model', model: node.model } : undefined;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
