// The models the language server serves, with hot swaps: a lease per request on the model active for a role, deploys
// that load the new model first and keep the previous one serving if that fails, reloads of retrained folders, and
// unloading of a model only once no request holds it (plus a few idle ones kept, most recently used first), and
// deploys made by other processes followed through the deployment histories.
import {
  type DeploymentHistory,
  type DeploymentRole,
  type DeploymentVersion,
  type GateReport,
  type ModelRole,
  type ModelSummary,
  deploymentRoles,
  modelRoles,
} from '../protocol';
import { type GateOptions, runGate } from './deployGate';
import { currentVersion, readHistories, readHistory, versionsUsing, watchHistory } from './deployments';
import { rollback, servingModel, versionedDeploy } from './versionedDeploy';
import { hasChatTemplate } from '../runtime/chatModel';
import { updateModelCard } from '../modelFolder/modelCard';
import { type ActiveModels, readActiveModels, writeActiveModels } from './activeModels';
import { ModelCatalog, type ModelEntry } from './modelCatalog';
import { inferenceThreads, weightBytes } from './inferenceThreads';
import { RegistryError } from './registryError';
import {
  type Flavor,
  type LanguageServingModel,
  type ServingModel,
  disposeModel,
  folderSignature,
  loadServingModel,
} from './servingModel';

export type DeployCheckOptions = Omit<GateOptions, 'role' | 'candidate' | 'serving'>;

const isEditorRole = (role: DeploymentRole): role is ModelRole => (modelRoles as readonly string[]).includes(role);

/** Loaded models that are not active for any role are kept, most recently used first, up to this many. */
const IDLE_MODELS = 2;

export interface Lease<M extends ServingModel = ServingModel> {
  readonly model: M;
  release(): void;
}

export interface RegistryOptions {
  modelsDirectory: string;
  bundledModelsDirectory: string;
  /** Untrusted workspaces serve bundled models only and cannot deploy. */
  trusted: boolean;
  /** Threads per model session; absent or 0: by the model's size (inferenceThreads). */
  threads?: number;
  log?: (message: string) => void;
}

interface Slot {
  id: string;
  entry: ModelEntry;
  flavor: Flavor;
  loading: Promise<ServingModel>;
  model?: ServingModel;
  failed?: string;
  leases: number;
  lastUsed: number;
  retired: boolean;
}

/** A version of the service role: the model's folder and its deployment version number. */
export interface ServiceVersion {
  name: string;
  dir: string;
  version?: number;
}

export class ModelRegistry {
  private readonly slots = new Map<string, Slot>();
  private readonly catalog: ModelCatalog;
  private active: ActiveModels = {};
  private readonly loadErrors = new Map<string, string>();
  /** Folders that failed to load, by name: not retried until their files change (a broken active model would
   * otherwise be reloaded on every keystroke). */
  private readonly failedFolders = new Map<string, { signature: string; error: RegistryError }>();
  private readonly listeners = new Set<() => void>();
  private loads = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly options: RegistryOptions) {
    this.catalog = new ModelCatalog(options);
  }

  get trusted(): boolean {
    return this.options.trusted;
  }

  get modelsDirectory(): string {
    return this.options.modelsDirectory;
  }

  /** Called after every change of the active models, a load failure or a reload. */
  onDidChange(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Every model folder that can be served (user models shadow bundled ones of the same name). */
  entries(): ModelEntry[] {
    return this.catalog.entries();
  }

  find(name: string): ModelEntry | undefined {
    return this.catalog.find(name);
  }

  resolve(name: string): ModelEntry {
    return this.catalog.resolve(name);
  }

  /** The model name per role; the explanation role falls back to the completion model. */
  activeModels(): ActiveModels {
    const completion = this.active.completion;
    const explanation = this.active.explanation ?? completion;
    return { ...(completion ? { completion } : {}), ...(explanation ? { explanation } : {}) };
  }

  /** Why the named model could not be loaded the last time, if it failed. */
  loadError(name: string): string | undefined {
    return this.loadErrors.get(name);
  }

  /** True when a model for the role is loaded and serving. */
  isServing(role: ModelRole): boolean {
    const name = this.activeModels()[role];
    if (!name) return false;
    return [...this.slots.values()].some((s) => s.entry.name === name && s.model && !s.retired);
  }

  /** The key of the loaded language model serving `role`, without loading anything. */
  servingKey(role: ModelRole): string | undefined {
    const name = this.activeModels()[role];
    const slot = name ? this.slots.get(`language:${name}`) : undefined;
    return slot?.model?.key;
  }

  /**
   * Reads active.json (or falls back to the bundled default), loads the completion model and, in a trusted
   * workspace, starts following deploys and rollbacks made by other processes.
   */
  async start(): Promise<void> {
    this.active = readActiveModels(this.options, (name) => this.find(name) !== undefined);
    if (this.options.trusted) this.followDeployments();
    const name = this.active.completion;
    if (name) {
      try {
        const lease = await this.acquire('completion');
        lease?.release();
      } catch {
        // recorded in loadErrors and reported through the status
      }
    }
    this.notify();
  }

  /**
   * A lease on the model serving `role` (or the model named by `override`, e.g. from the settings); undefined when
   * the role has no model. The explanation role gets a chat model when the folder has a chat template. Throws
   * RegistryError when the model is unknown or cannot be loaded.
   */
  async acquire(role: ModelRole, override?: string): Promise<Lease | undefined> {
    const entry = this.entryFor(role, override);
    if (!entry) return undefined;
    return this.lease(entry, role === 'explanation' && hasChatTemplate(entry.dir) ? 'chat' : 'language');
  }

  /** A lease on a language model (never a chat model) for the role. */
  async acquireLanguageModel(role: ModelRole, override?: string): Promise<Lease<LanguageServingModel> | undefined> {
    const entry = this.entryFor(role, override);
    if (!entry) return undefined;
    return (await this.lease(entry, 'language')) as Lease<LanguageServingModel>;
  }

  private entryFor(role: ModelRole, override?: string): ModelEntry | undefined {
    const name = override || this.activeModels()[role];
    return name ? this.resolve(name) : undefined;
  }

  private async lease(entry: ModelEntry, flavor: Flavor): Promise<Lease> {
    const slot = this.slotFor(entry, flavor);
    slot.leases++;
    let model: ServingModel;
    try {
      model = await slot.loading;
    } catch (e) {
      slot.leases--;
      this.collect();
      throw e;
    }
    slot.lastUsed = Date.now();
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        slot.leases--;
        slot.lastUsed = Date.now();
        this.collect();
      },
    };
  }

  /**
   * Makes `name` the active model for `role`: loads it first (the previous model keeps serving while it loads,
   * and stays active if loading fails), then swaps, persists active.json and records the deploy time in the card.
   */
  deploy(name: string, role: ModelRole): Promise<ActiveModels> {
    return this.serialized(async () => {
      if (!modelRoles.includes(role))
        throw new RegistryError(`unknown role "${String(role)}"; roles: ${modelRoles.join(', ')}`, 'invalidName');
      const entry = this.deployable(name);
      await this.load(entry, role);
      this.swapIn(entry, role);
      if (!entry.bundled) {
        try {
          updateModelCard(entry.dir, (card) => {
            card.deployedAt = { ...(card.deployedAt ?? {}), [role]: new Date().toISOString() };
          });
        } catch {
          // a folder without a card (or a read-only one) still deploys
        }
      }
      return this.activeModels();
    });
  }

  /** The gate's table for deploying `name` to `role`, without deploying. */
  async checkDeploy(name: string, role: DeploymentRole, options: DeployCheckOptions = {}): Promise<GateReport> {
    const entry = this.deployable(name);
    const { report } = await runGate({
      ...options,
      role,
      candidate: { name: entry.name, dir: entry.dir },
      serving: this.servingFor(role),
    });
    return report;
  }

  /**
   * An evaluation-gated deploy: compares with the role's current version, and when the candidate is not worse (or
   * `force` says why to deploy anyway) loads it, commits a new version and swaps it in. Resolves with the gate's
   * table and the version, or with the table alone when refused (nothing changed).
   */
  gatedDeploy(
    name: string,
    role: DeploymentRole,
    options: DeployCheckOptions & { force?: string } = {},
  ): Promise<{ report: GateReport; version?: DeploymentVersion }> {
    return this.serialized(async () => {
      const entry = this.deployable(name);
      if (entry.bundled)
        throw new RegistryError('bundled models are deployed as they are, without versions', 'forbidden');
      return versionedDeploy({
        ...options,
        modelsDirectory: this.options.modelsDirectory,
        role,
        candidate: { name: entry.name, dir: entry.dir },
        fallbackServing: this.servingFor(role),
        prepare: async () => {
          if (isEditorRole(role)) await this.load(entry, role);
        },
        activate: (r) => this.activateVersion(entry, r),
      });
    });
  }

  /** Serves a role's previous version (or `version`) again, with its exact files. */
  rollback(role: DeploymentRole, version?: number): Promise<DeploymentVersion> {
    return this.serialized(async () => {
      if (!this.options.trusted) throw new RegistryError('untrusted workspace: no deploys or rollbacks', 'forbidden');
      let target: ModelEntry | undefined;
      const result = await rollback({
        modelsDirectory: this.options.modelsDirectory,
        role,
        version,
        prepare: async (model) => {
          target = { name: model.name, dir: model.dir, bundled: false };
          if (isEditorRole(role)) await this.loadAfresh(target, role);
        },
        activate: (r) => (target ? this.activateVersion(target, r) : undefined),
      });
      return result;
    });
  }

  /** Every role's versions. */
  deployments(): DeploymentHistory[] {
    return this.options.trusted ? readHistories(this.options.modelsDirectory) : [];
  }

  /** The versions that name a model (a deletion asks first: rolling back to them restores the folder). */
  versionsUsing(name: string): { role: DeploymentRole; version: number }[] {
    return this.options.trusted ? versionsUsing(this.options.modelsDirectory, name) : [];
  }

  /** The model and version number serving a role's current deployment (none before its first deploy). */
  deployedVersion(role: DeploymentRole): { name: string; version: number } | undefined {
    if (!this.options.trusted) return undefined;
    const current = currentVersion(readHistory(this.options.modelsDirectory, role));
    return current && { name: current.model, version: current.version };
  }

  /** Called when a version of the service role changes (the HTTP service swaps its models). */
  onDidChangeService(listener: (model: ServiceVersion) => void): { dispose(): void } {
    this.serviceListeners.add(listener);
    return { dispose: () => this.serviceListeners.delete(listener) };
  }

  private readonly serviceListeners = new Set<(model: ServiceVersion) => void>();

  /** The version of each role this registry serves, so that a change of the history by another process shows. */
  private readonly servedVersions = new Map<DeploymentRole, number | undefined>();
  private readonly stopFollowing: (() => void)[] = [];

  /**
   * Watches each role's history file: a version committed by another process (`modelwright deploy` or a rollback
   * in a terminal) is loaded and swapped in here too, as if it had been deployed through this server.
   */
  private followDeployments(intervalMs = 1000): void {
    for (const role of deploymentRoles) {
      this.servedVersions.set(role, this.deployedVersion(role)?.version);
      const watch = watchHistory(
        this.options.modelsDirectory,
        role,
        () => void this.adoptDeployedVersion(role),
        intervalMs,
      );
      this.stopFollowing.push(() => watch.dispose());
    }
  }

  private adoptDeployedVersion(role: DeploymentRole): Promise<void> {
    return this.serialized(async () => {
      const deployed = this.deployedVersion(role);
      if (this.disposed || !deployed || deployed.version === this.servedVersions.get(role)) return;
      const serving = servingModel(this.options.modelsDirectory, role);
      const entry = serving && this.find(deployed.name);
      if (!serving || !entry) return;
      try {
        if (isEditorRole(role)) await this.loadAfresh(entry, role);
        this.activateVersion(entry, role);
        this.options.log?.(`${role} version ${deployed.version} ("${entry.name}"), deployed elsewhere, now serves`);
      } catch (e) {
        this.servedVersions.set(role, deployed.version); // not retried until the next version
        this.options.log?.(
          `${role} version ${deployed.version} could not be loaded: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    });
  }

  private activateVersion(entry: ModelEntry, role: DeploymentRole): void {
    this.servedVersions.set(role, this.deployedVersion(role)?.version);
    if (isEditorRole(role)) {
      this.swapIn(entry, role);
      return;
    }
    const version = this.deployedVersion(role)?.version;
    for (const listener of this.serviceListeners) {
      try {
        listener({ name: entry.name, dir: entry.dir, version });
      } catch (e) {
        this.options.log?.(`service listener failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.notify();
  }

  private servingFor(role: DeploymentRole): { name: string; dir: string } | undefined {
    const versioned = servingModel(this.options.modelsDirectory, role);
    if (versioned) return versioned;
    if (!isEditorRole(role)) return undefined;
    const name = this.activeModels()[role];
    const entry = name ? this.find(name) : undefined;
    return entry ? { name: entry.name, dir: entry.dir } : undefined;
  }

  private deployable(name: string): ModelEntry {
    const entry = this.resolve(name);
    if (!this.options.trusted && !entry.bundled)
      throw new RegistryError('untrusted workspace: only bundled models can be deployed', 'forbidden');
    return entry;
  }

  /** Loads the model a role would serve; the previous model keeps serving while it loads, and if it fails. */
  private async load(entry: ModelEntry, role: ModelRole): Promise<void> {
    const flavor: Flavor = role === 'explanation' && hasChatTemplate(entry.dir) ? 'chat' : 'language';
    const slot = this.slotFor(entry, flavor);
    try {
      await slot.loading;
    } catch (e) {
      const previous = this.activeModels()[role];
      const message = e instanceof Error ? e.message : String(e);
      throw new RegistryError(`${message}${previous ? `; "${previous}" keeps serving ${role}` : ''}`, 'loadFailed');
    }
  }

  /** Loads a model's files again for a role, whatever copy is loaded (a rollback may have restored its folder). */
  private async loadAfresh(entry: ModelEntry, role: ModelRole): Promise<void> {
    for (const old of [...this.slots.values()]) if (old.entry.name === entry.name) this.retire(old);
    await this.load(entry, role);
  }

  /** Makes a loaded model the active one for a role, persists active.json and unloads the swapped-out model. */
  private swapIn(entry: ModelEntry, role: ModelRole): void {
    const previous = this.activeModels()[role];
    this.active[role] = entry.name;
    writeActiveModels(this.options, this.active);
    if (previous && previous !== entry.name && this.rolesOf(previous).length === 0) {
      // The swapped-out model is unloaded as soon as the requests still using it finish.
      for (const old of [...this.slots.values()]) if (old.entry.name === previous) this.retire(old);
    }
    this.collect();
    this.notify();
  }

  /**
   * Loads a model folder again after it changed on disk (e.g. retrained), swapping the loaded copies; requests
   * holding the old copy finish with it. Failures keep the old copy serving.
   */
  reload(name: string): Promise<void> {
    return this.serialized(async () => {
      const entry = this.find(name);
      const old = [...this.slots.values()].filter((s) => s.entry.name === name && !s.retired);
      if (!entry || old.length === 0) return;
      for (const previous of old) {
        const fresh = this.newSlot(entry, previous.flavor);
        try {
          await fresh.loading;
        } catch {
          this.slots.set(previous.id, previous);
          continue;
        }
        this.retire(previous);
        this.slots.set(fresh.id, fresh);
      }
      this.collect();
      this.notify();
    });
  }

  /** Unloads a model whose folder is going away; refuses active models. */
  async remove(name: string): Promise<void> {
    const roles = this.rolesOf(name);
    if (roles.length)
      throw new RegistryError(`"${name}" is active for ${roles.join(' and ')}; deploy another model first`, 'conflict');
    for (const slot of [...this.slots.values()]) if (slot.entry.name === name) this.retire(slot);
    this.collect();
  }

  /** The roles a model is active for. */
  rolesOf(name: string): ModelRole[] {
    const active = this.activeModels();
    return modelRoles.filter((role) => active[role] === name);
  }

  summaries(training?: string): ModelSummary[] {
    return this.catalog.summaries((name) => this.rolesOf(name), training);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const stop of this.stopFollowing.splice(0)) stop();
    const slots = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(slots.map((s) => s.model && disposeModel(s.model)));
  }

  private slotFor(entry: ModelEntry, flavor: Flavor): Slot {
    const id = `${flavor}:${entry.name}`;
    const existing = this.slots.get(id);
    if (existing && !existing.failed && !existing.retired && existing.entry.dir === entry.dir) return existing;
    const failed = this.failedFolders.get(id);
    if (failed && failed.signature === folderSignature(entry.dir)) {
      const slot = this.newSlot(entry, flavor, failed.error);
      return slot;
    }
    const slot = this.newSlot(entry, flavor);
    this.slots.set(id, slot);
    return slot;
  }

  /** A slot that loads the folder, or (with `knownFailure`) one that fails at once without touching the files. */
  private newSlot(entry: ModelEntry, flavor: Flavor, knownFailure?: RegistryError): Slot {
    const id = `${flavor}:${entry.name}`;
    const key = `${entry.name}#${++this.loads}`;
    const slot: Slot = {
      id,
      entry,
      flavor,
      leases: 0,
      lastUsed: Date.now(),
      retired: false,
      loading: undefined as never,
    };
    if (knownFailure) {
      slot.failed = knownFailure.message;
      slot.loading = Promise.reject(knownFailure);
      slot.loading.catch(() => {});
      return slot;
    }
    const signature = folderSignature(entry.dir);
    const threads = inferenceThreads(this.options.threads ?? 0, weightBytes(entry.dir));
    slot.loading = loadServingModel(entry, flavor, key, threads).then(
      (model) => {
        slot.model = model;
        this.loadErrors.delete(entry.name);
        this.failedFolders.delete(id);
        this.options.log?.(`loaded model "${entry.name}" (${flavor}) from ${entry.dir}`);
        if (this.disposed) void disposeModel(model);
        else if (slot.retired) this.collect();
        return model;
      },
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        slot.failed = message;
        this.retired.delete(slot);
        this.loadErrors.set(entry.name, message);
        if (this.slots.get(id) === slot) this.slots.delete(id);
        this.options.log?.(`could not load model "${entry.name}": ${message}`);
        const error = new RegistryError(`model "${entry.name}" could not be loaded: ${message}`, 'loadFailed');
        this.failedFolders.set(id, { signature, error });
        this.notify();
        throw error;
      },
    );
    slot.loading.catch(() => {}); // a failure is reported to whoever awaits it; never unhandled
    return slot;
  }

  /** Disposes loaded models that no request holds and no role needs (retired ones first, then beyond IDLE_MODELS). */
  private collect(): void {
    const active = this.activeModels();
    const pinned = (slot: Slot) => modelRoles.some((role) => active[role] === slot.entry.name);
    for (const slot of [...this.retired]) if (slot.leases === 0) this.unload(slot);
    const idle = [...this.slots.values()].filter((slot) => slot.model && slot.leases === 0 && !pinned(slot));
    idle.sort((a, b) => b.lastUsed - a.lastUsed);
    for (const slot of idle.slice(IDLE_MODELS)) this.unload(slot);
  }

  /** Copies of models that were replaced or removed; unloaded when their last lease is released. */
  private readonly retired = new Set<Slot>();

  private retire(slot: Slot): void {
    slot.retired = true;
    if (this.slots.get(slot.id) === slot) this.slots.delete(slot.id);
    this.retired.add(slot);
  }

  private unload(slot: Slot): void {
    const model = slot.model;
    if (!model) return; // still loading: a retired slot is unloaded once its load finishes
    if (this.slots.get(slot.id) === slot) this.slots.delete(slot.id);
    this.retired.delete(slot);
    slot.model = undefined;
    this.options.log?.(`unloaded model "${slot.entry.name}" (${slot.flavor})`);
    void disposeModel(model);
  }

  /** Runs deploys and reloads one at a time. */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => {});
    return run;
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (e) {
        this.options.log?.(`registry listener failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}
