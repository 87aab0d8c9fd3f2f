// The model commands: list the models (with status and latest metrics), read a model card, deploy a model for a
// role (hot-swapped: the previous model serves until the new one has loaded, and keeps serving if it fails),
// and delete a trained model folder (never a bundled, active or training one).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ServerCapabilities } from 'vscode-languageserver';
import {
  DeleteModel,
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

  private async delete(raw: DeleteModel.Params): Promise<DeleteModel.Result> {
    const { registry, options } = this.context;
    const name = modelName(raw, DeleteModel.method);
    if (!registry.trusted) throw requestFailed('untrusted workspace: models cannot be deleted');
    const entry = registry.resolve(name);
    if (entry.bundled) throw requestFailed(`"${name}" is a bundled model and cannot be deleted`);
    if (this.training.current() === name) throw requestFailed(`"${name}" is training; stop the training first`);
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
