// The model commands: list the models (with status and latest metrics), read a model card, deploy a model for a
// role (hot-swapped: the previous model serves until the new one has loaded, and keeps serving if it fails),
// and delete a trained model folder (never a bundled, active or training one).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LSPErrorCodes, ResponseError, type ServerCapabilities } from 'vscode-languageserver';
import { evaluateClassifier } from '../classify/classifierMetrics';
import {
  CheckDeploy,
  DeleteModel,
  type DeploymentRole,
  EvaluateClassifier,
  GatedDeploy,
  ListDeployments,
  RollbackDeployment,
  deploymentRoles,
  DeployModel,
  GetModelCard,
  ListModels,
  type ModelRole,
  isValidModelName,
  modelNameRule,
  modelRoles,
} from '../protocol';
import { readModelCard } from '../modelFolder/modelCard';
import { answering, invalidParams, requestFailed } from './errors';
import type { Feature } from './feature';
import { requireObject } from './params';
import type { ServerContext } from './serverContext';

export interface TrainingState {
  /** The name of the model being trained, if any. */
  current(): string | undefined;
}

export class ModelsFeature implements Feature {
  constructor(
    private readonly context: ServerContext,
    private readonly training: TrainingState,
  ) {}

  initialize(): ServerCapabilities {
    const { connection, registry } = this.context;
    connection.onRequest(ListModels.type, () =>
      answering(async () => ({ models: registry.summaries(this.training.current()), active: registry.activeModels() })),
    );
    connection.onRequest(GetModelCard.type, (params) =>
      answering(async () => {
        const name = modelName(params, GetModelCard.method);
        const entry = registry.resolve(name);
        let card: Record<string, unknown> | undefined;
        try {
          card = readModelCard(entry.dir) as unknown as Record<string, unknown> | undefined;
        } catch (e) {
          throw requestFailed(
            `the model card of "${name}" is not valid JSON: ${e instanceof Error ? e.message : String(e)}`,
          );
        }
        if (!card) throw requestFailed(`model "${name}" has no model card (modelwright.json)`);
        return card;
      }),
    );
    connection.onRequest(DeployModel.type, (params) => answering(() => this.deploy(params)));
    connection.onRequest(DeleteModel.type, (params) => answering(() => this.delete(params)));
    connection.onRequest(CheckDeploy.type, (params) =>
      answering(() =>
        registry.checkDeploy(modelName(params, CheckDeploy.method), deployRole(params), gateOptions(params)),
      ),
    );
    connection.onRequest(GatedDeploy.type, (params) => answering(() => this.gatedDeploy(params)));
    connection.onRequest(ListDeployments.type, () => answering(async () => ({ histories: registry.deployments() })));
    connection.onRequest(RollbackDeployment.type, (params) =>
      answering(async () => {
        const role = deployRole(params);
        const version = (params as { version?: unknown }).version;
        if (version !== undefined && !Number.isInteger(version))
          throw invalidParams(`${RollbackDeployment.method}: version must be an integer`);
        const result = await registry.rollback(role, version as number | undefined);
        this.context.status.update({
          message: `${role} rolled back to version ${result.rollbackOf} ("${result.model}")`,
        });
        return { version: result };
      }),
    );
    connection.onRequest(EvaluateClassifier.type, (params) =>
      answering(async () => {
        const p = requireObject(params, EvaluateClassifier.method) as Partial<EvaluateClassifier.Params>;
        const entry = registry.resolve(modelName(p, EvaluateClassifier.method));
        for (const key of ['data', 'text', 'label'] as const)
          if (typeof p[key] !== 'string' || !p[key])
            throw invalidParams(`${EvaluateClassifier.method}: ${key} is required`);
        return evaluateClassifier(entry.dir, p.data!, { text: p.text!, label: p.label! });
      }),
    );
    return {};
  }

  private async deploy(raw: DeployModel.Params): Promise<DeployModel.Result> {
    const name = modelName(raw, DeployModel.method);
    const role = (raw as { role?: unknown }).role;
    if (!modelRoles.includes(role as ModelRole))
      throw invalidParams(`${DeployModel.method}: role must be one of ${modelRoles.join(', ')}`);
    try {
      const active = await this.context.registry.deploy(name, role as ModelRole);
      this.context.status.update({ message: `"${name}" now serves ${role}` });
      return { active };
    } catch (e) {
      const message = `Could not deploy "${name}" for ${role}: ${e instanceof Error ? e.message : String(e)}`;
      this.context.log.warn(message);
      this.context.status.update({ message });
      throw e;
    }
  }

  private async gatedDeploy(raw: GatedDeploy.Params): Promise<GatedDeploy.Result> {
    const name = modelName(raw, GatedDeploy.method);
    const role = deployRole(raw);
    const force = (raw as { force?: unknown }).force;
    if (force !== undefined && typeof force !== 'string')
      throw invalidParams(`${GatedDeploy.method}: force must be a reason`);
    const result = await this.context.registry.gatedDeploy(name, role, {
      ...gateOptions(raw),
      force: force || undefined,
    });
    if (!result.version) {
      throw new ResponseError<GatedDeploy.ErrorData>(
        LSPErrorCodes.RequestFailed,
        `"${name}" is worse than "${result.report.serving}" for ${role}; deploy it anyway to override the gate`,
        { gate: result.report },
      );
    }
    this.context.status.update({ message: `"${name}" serves ${role} as version ${result.version.version}` });
    return { gate: result.report, version: result.version };
  }

  private async delete(raw: DeleteModel.Params): Promise<DeleteModel.Result> {
    const { registry, options } = this.context;
    const name = modelName(raw, DeleteModel.method);
    if (!registry.trusted) throw requestFailed('untrusted workspace: models cannot be deleted');
    const entry = registry.resolve(name);
    if (entry.bundled) throw requestFailed(`"${name}" is a bundled model and cannot be deleted`);
    if (this.training.current() === name) throw requestFailed(`"${name}" is training; stop the training first`);
    const versions = registry.versionsUsing(name);
    if (versions.length && (raw as { confirm?: unknown }).confirm !== true) {
      throw requestFailed(
        `"${name}" is ${versions.map((v) => `${v.role} version ${v.version}`).join(', ')}; ` +
          'send confirm: true to delete it (a rollback to those versions restores its files from the deployment history)',
      );
    }
    const inside = path.relative(path.resolve(options.modelsDirectory), path.resolve(entry.dir));
    if (inside.startsWith('..') || path.isAbsolute(inside) || inside === '')
      throw requestFailed(`"${entry.dir}" is not inside the models directory`);
    await registry.remove(name);
    fs.rmSync(entry.dir, { recursive: true, force: true });
    this.context.status.update({ message: `deleted "${name}"` });
    return {};
  }
}

function modelName(params: unknown, method: string): string {
  const name = requireObject(params, method).name;
  if (!isValidModelName(name))
    throw invalidParams(
      `${method}: name must be a model name (${modelNameRule.description}), got ${JSON.stringify(name)}`,
    );
  return name;
}

function deployRole(params: unknown): DeploymentRole {
  const role = (params as { role?: unknown } | undefined)?.role;
  if (!deploymentRoles.includes(role as DeploymentRole))
    throw invalidParams(`role must be one of ${deploymentRoles.join(', ')}`);
  return role as DeploymentRole;
}

function gateOptions(params: unknown): { threshold?: number; evalWorkspace?: string } {
  const { threshold, evalWorkspace } = (params ?? {}) as { threshold?: unknown; evalWorkspace?: unknown };
  if (threshold !== undefined && !(typeof threshold === 'number' && threshold >= 0))
    throw invalidParams('threshold must be a number ≥ 0');
  if (evalWorkspace !== undefined && typeof evalWorkspace !== 'string')
    throw invalidParams('evalWorkspace must be a folder path');
  return { threshold: threshold as number | undefined, evalWorkspace: evalWorkspace as string | undefined };
}
