// The Models tree in the Modelwright activity-bar container: one row per model (name, size, preset, status),
// its metrics, provenance and what its files say (where it was downloaded from, family, precision, context,
// fill-in-the-middle, chat, license) as children and in the tooltip, and context values that the manifest's
// menus match (deploy, evaluate, train further, reveal the model card, delete). Below the models, Deployments:
// each role with its versions (the serving one marked; rollback from the role's menu), and for a classifier its
// macro-F1, accuracy and confusion matrix; for a completion model, how often its suggestions were accepted here.
import * as vscode from 'vscode';
import {
  type AcceptanceFigures,
  type DeploymentHistory,
  GetAcceptanceRates,
  type DeploymentVersion,
  ListDeployments,
  type ModelRole,
  type ModelSummary,
} from '../../server/src/protocol';
import { acceptanceText } from './acceptanceText';
import { confusionMarkdown, describeVersion, versionMetrics } from './deploymentFormat';
import { commandIds } from './commandIds';
import { describeModel, formatTimestamp, metricRows, modelFacts, modelTooltip } from './format';
import type { ServerClient } from './serverClient';

export type ModelsTreeNode =
  | { kind: 'model'; model: ModelSummary }
  | { kind: 'detail'; model: ModelSummary; label: string; value: string; command?: vscode.Command; tooltip?: string }
  | { kind: 'deployments' }
  | { kind: 'deploymentRole'; history: DeploymentHistory }
  | { kind: 'deploymentVersion'; history: DeploymentHistory; version: DeploymentVersion };

const roleTitles: Record<DeploymentHistory['role'], string> = {
  completion: 'Inline completions',
  explanation: 'Explanations',
  service: 'HTTP service',
};

export class ModelsTreeProvider implements vscode.TreeDataProvider<ModelsTreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ModelsTreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private models: ModelSummary[] = [];
  private active: Partial<Record<ModelRole, string>> = {};
  private histories: DeploymentHistory[] = [];
  private acceptance: Record<string, AcceptanceFigures> = {};
  private readonly subscriptions: vscode.Disposable[] = [];
  private loading: Promise<void> | undefined;
  private loaded = false;

  constructor(
    private readonly server: ServerClient,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(
      server.onAcceptanceRates((models) => {
        this.acceptance = models;
        this.changed.fire(undefined);
      }),
    );
  }

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
        // Servers without versions (or an acceptance record) answer "method not found": those rows stay out.
        return Promise.all([
          this.server.request(ListDeployments, {}).then(
            (deployments) => {
              this.histories = deployments.histories;
            },
            () => {
              this.histories = [];
            },
          ),
          this.server.request(GetAcceptanceRates, {}).then(
            (rates) => {
              this.acceptance = rates.models;
            },
            () => undefined,
          ),
        ]).then(() => undefined);
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

  /** Every role's versions, as last listed. */
  get deployments(): readonly DeploymentHistory[] {
    return this.histories;
  }

  getTreeItem(node: ModelsTreeNode): vscode.TreeItem {
    if (node.kind === 'deployments') {
      const item = new vscode.TreeItem('Deployments', vscode.TreeItemCollapsibleState.Collapsed);
      item.id = 'deployments';
      item.iconPath = new vscode.ThemeIcon('history');
      item.contextValue = 'deployments';
      return item;
    }
    if (node.kind === 'deploymentRole') {
      const { history } = node;
      const current = history.versions.find((v) => v.version === history.current);
      const item = new vscode.TreeItem(
        roleTitles[history.role],
        history.versions.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
      );
      item.id = `deployments:${history.role}`;
      item.description = current ? `v${current.version} · ${current.model}` : 'no versions yet';
      item.contextValue = history.versions.length > 1 ? 'deploymentRole rollbackable' : 'deploymentRole';
      return item;
    }
    if (node.kind === 'deploymentVersion') {
      const { history, version } = node;
      const current = version.version === history.current;
      const item = new vscode.TreeItem(`v${version.version}`, vscode.TreeItemCollapsibleState.None);
      item.id = `deployments:${history.role}:${version.version}`;
      item.description = describeVersion(version, current);
      item.tooltip = `${describeVersion(version, current)}\n${versionMetrics(version)}\nsha256 ${version.sha256}`;
      item.iconPath = new vscode.ThemeIcon(current ? 'pass-filled' : 'circle-small');
      item.contextValue = current ? 'deploymentVersion current' : 'deploymentVersion';
      return item;
    }
    if (node.kind === 'detail') {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
      item.description = node.value;
      item.tooltip = node.tooltip ? new vscode.MarkdownString(node.tooltip) : `${node.label}: ${node.value}`;
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
      if (this.histories.some((h) => h.versions.length)) nodes.push({ kind: 'deployments' });
      return nodes;
    }
    if (node.kind === 'deployments') return this.histories.map((history) => ({ kind: 'deploymentRole', history }));
    if (node.kind === 'deploymentRole')
      return [...node.history.versions]
        .reverse()
        .map((version) => ({ kind: 'deploymentVersion', history: node.history, version }));
    if (node.kind !== 'model') return [];
    const m = node.model;
    const details: ModelsTreeNode[] = [];
    const detail = (label: string, value: string, command?: vscode.Command, tooltip?: string) =>
      details.push({ kind: 'detail', model: m, label, value, command, tooltip });
    if (m.roles.length) detail('deployed for', m.roles.join(', '));
    const c = m.classification;
    if (c) {
      detail('labels', c.labels.join(', '));
      detail('macro-F1', `${c.macroF1.toFixed(3)} on ${c.samples} validation rows`);
      detail(
        'accuracy',
        `${(100 * c.accuracy).toFixed(1)}% (majority class ${(100 * c.majorityAccuracy).toFixed(1)}%)`,
      );
      detail('confusion matrix', 'hover to see it', undefined, confusionMarkdown(c));
    } else if (m.metrics) for (const [label, value] of metricRows(m.metrics)) detail(label, value);
    else
      detail('metrics', 'not evaluated yet: click to evaluate', {
        title: 'Evaluate',
        command: commandIds.evaluate,
        arguments: [node],
      });
    for (const [label, value] of modelFacts(m)) detail(label, value);
    if (m.kind !== 'text-classification' && (this.acceptance[m.name] || m.roles.includes('completion')))
      detail('suggestions', acceptanceText(this.acceptance[m.name]));
    if (m.parent) detail('fine-tuned from', m.parent);
    if (m.createdAt) detail('created', formatTimestamp(m.createdAt));
    return details;
  }

  getParent(node: ModelsTreeNode): ModelsTreeNode | undefined {
    if (node.kind === 'detail') return { kind: 'model', model: node.model };
    if (node.kind === 'deploymentRole') return { kind: 'deployments' };
    if (node.kind === 'deploymentVersion') return { kind: 'deploymentRole', history: node.history };
    return undefined;
  }

  dispose(): void {
    for (const subscription of this.subscriptions) subscription.dispose();
    this.changed.dispose();
  }
}
