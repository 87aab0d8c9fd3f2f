// modelwright/pullModel and modelwright/setHubToken: downloads a Hugging Face hub model into the models directory
// (hub/pull.ts: resume, verification, `.pull.json` last) with work-done progress and cancellation, converts a
// safetensors-only download to ONNX in a child process (fp32, or int8 for q8), and only then moves it into place,
// so the registry never lists half a model. The download goes to `<models>/.pulls/<name>` (not a model name, so
// never listed), where an interrupted one resumes next time; re-downloading a model updates it, reusing the files
// that did not change.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type CancellationToken, LSPErrorCodes, ResponseError, type ServerCapabilities } from 'vscode-languageserver';
import { CONVERTED_FILES, type ConversionDtype } from '../convert/convertFolder';
import { externalDataFileOf } from '../engine/onnxFile';
import { HubError } from '../hub/hubError';
import { pullModel } from '../hub/pull';
import { MANIFEST_FILE, readManifest } from '../hub/pullManifest';
import { formatBytes, formatDuration, type PullProgress } from '../hub/pullProgress';
import {
  PullModel,
  type PullDtype,
  SetHubToken,
  hubRepoRule,
  isHubRepoId,
  modelNameRule,
  pullDtypes,
  pulledModelName,
} from '../protocol';
import { hasChatTemplate } from '../runtime/chatModel';
import { ONNX_CANDIDATES } from '../runtime/languageModel';
import { abortSignalFrom } from '../util/cancellation';
import { answering, invalidParams, requestFailed } from './errors';
import type { Feature } from './feature';
import { requireObject } from './params';
import type { ServerContext } from './serverContext';
import { runConversion } from '../workers/workerJob';

/** Where downloads are made, under the models directory (a dot folder: never a model). */
export const PULLS_DIR = '.pulls';

/** Progress messages go out at most this often (the downloader reports ~10 times a second). */
const REPORT_MS = 250;

export class PullModelFeature implements Feature {
  private token: string | undefined;
  /** Downloads running, by model name, to refuse a second one of the same model and to stop them on shutdown. */
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly context: ServerContext) {
    this.token = nonEmpty(context.options.hubToken);
  }

  initialize(): ServerCapabilities {
    const { connection } = this.context;
    connection.onRequest(PullModel.type, (params, token) => answering(() => this.pull(params, token)));
    connection.onNotification(SetHubToken.type, (params) => {
      this.token = nonEmpty((params as Partial<SetHubToken.Params> | undefined)?.token);
      this.context.log.info(this.token ? 'a Hugging Face token was set' : 'the Hugging Face token was removed');
    });
    return {};
  }

  private async pull(raw: PullModel.Params, cancel: CancellationToken): Promise<PullModel.Result> {
    const { registry, log, status } = this.context;
    const params = requireObject(raw, PullModel.method) as Partial<PullModel.Params>;
    if (!registry.trusted) throw requestFailed('untrusted workspace: models cannot be downloaded');
    const repo = typeof params.repo === 'string' ? params.repo.trim() : params.repo;
    if (!isHubRepoId(repo))
      throw invalidParams(`${PullModel.method}: repo must be a hub model id (${hubRepoRule.description})`);
    const revision = params.revision === undefined ? 'main' : params.revision;
    if (typeof revision !== 'string' || !/^[^\s]{1,200}$/.test(revision))
      throw invalidParams(`${PullModel.method}: revision must be a branch, tag or commit without spaces`);
    const dtype = params.dtype ?? 'fp32';
    if (!pullDtypes.includes(dtype as PullDtype))
      throw invalidParams(`${PullModel.method}: dtype must be one of ${pullDtypes.join(', ')}`);
    if (params.token !== undefined && typeof params.token !== 'string')
      throw invalidParams(`${PullModel.method}: token must be a string`);
    const name = pulledModelName(repo, revision, dtype);
    if (!name) throw invalidParams(`${repo}@${revision} makes no valid model name (${modelNameRule.description})`);
    if (registry.find(name)?.bundled) throw invalidParams(`"${name}" is the name of a bundled model`);
    if (this.running.has(name)) throw requestFailed(`${name} is already downloading`);

    const modelsDirectory = registry.modelsDirectory;
    const target = path.join(modelsDirectory, name);
    const previous = fs.existsSync(target) ? readManifest(target) : undefined;
    if (fs.existsSync(target) && previous?.repo !== repo)
      throw requestFailed(
        `a model named "${name}" exists and is not a download of ${repo}: delete it first (${target})`,
      );
    const staging = path.join(modelsDirectory, PULLS_DIR, name);
    if (previous) seedFromPrevious(target, staging, previous.files);

    const controller = new AbortController();
    this.running.set(name, controller);
    const progress = await this.context.progress.begin(params.workDoneToken, `Downloading ${repo}`, true);
    const cancellation = abortSignalFrom(cancel);
    const signal = AbortSignal.any([cancellation.signal, progress.signal, controller.signal]);
    let lastReport = 0;
    let lastPhase = '';
    const onProgress = (p: PullProgress) => {
      const now = Date.now();
      if (p.phase === lastPhase && now - lastReport < REPORT_MS) return;
      lastReport = now;
      lastPhase = p.phase;
      if (p.phase === 'resolving') progress.report(`resolving ${revision}`, 0);
      else if (p.phase === 'downloading') progress.report(pullProgressMessage(p), percentOf(p));
      else progress.report(`verified ${p.filesTotal} files, ${formatBytes(p.bytesTotal)}`, 100);
    };
    log.info(`downloading ${repo}@${revision} (${dtype}) into ${staging}`);
    try {
      const result = await pullModel({
        repo,
        revision,
        dtype: dtype as PullDtype,
        out: staging,
        token: nonEmpty(params.token) ?? this.token, // undefined: HF_TOKEN of the environment, if any
        signal,
        onProgress,
      });
      signal.throwIfAborted();
      const converted = result.weights === 'safetensors';
      if (converted) {
        const conversion: ConversionDtype = result.dtype === 'q8' ? 'q8' : 'fp32';
        // The same commit as the previous download: its conversion still holds.
        const reused = previous?.commit === result.commit && reuseConversion(target, staging, conversion);
        if (!reused) {
          progress.report(`converting the safetensors weights to ONNX (${conversion})…`, 100);
          try {
            const done = await runConversion(
              { modelDir: staging, dtype: conversion },
              { signal, log: (line) => log.info(line) },
            );
            log.info(`${name}: wrote ${done.onnxFile} (${done.family}, ${done.parameters} parameters)`);
          } catch (e) {
            signal.throwIfAborted();
            throw requestFailed(
              `${repo} was downloaded but cannot be converted to ONNX: ${e instanceof Error ? e.message : String(e)}`,
            );
          }
        }
      }
      signal.throwIfAborted();
      moveIntoPlace(staging, target);
      if (previous) await registry.reload(name); // an updated model that is loaded: swap the new files in
      const warning = runnableWarning(name, target);
      if (warning) log.warn(warning);
      const size = result.files.reduce((sum, file) => sum + file.size, 0);
      log.info(
        `downloaded ${repo}@${result.commit.slice(0, 12)} as ${name}: ${result.files.length} files, ` +
          `${formatBytes(size)} (${formatBytes(result.downloadedBytes)} fetched)${converted ? ', converted to ONNX' : ''}`,
      );
      progress.done(`Downloaded ${name}`);
      status.update({ message: `downloaded "${name}"` });
      return { name, path: target, converted, ...(warning ? { warning } : {}) };
    } catch (e) {
      progress.done();
      throw pullError(e, signal.aborted, repo);
    } finally {
      this.running.delete(name);
      cancellation.dispose();
    }
  }

  /** Shutdown: running downloads stop (what they fetched stays for the next try to resume). */
  dispose(): void {
    for (const controller of this.running.values()) controller.abort();
  }
}

/** "120 MB / 988 MB · 4.20 MB/s · 3:25 left · file 3/9 model.safetensors" */
export function pullProgressMessage(p: PullProgress): string {
  const parts = [`${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}`];
  if (p.bytesPerSecond > 0) parts.push(`${formatBytes(p.bytesPerSecond)}/s`);
  if (p.etaSeconds !== undefined && p.bytesPerSecond > 0) parts.push(`${formatDuration(p.etaSeconds)} left`);
  parts.push(`file ${Math.min(p.filesDone + 1, p.filesTotal)}/${p.filesTotal}${p.file ? ` ${p.file}` : ''}`);
  return parts.join(' · ');
}

/** Why completions (or anything) cannot run the folder, e.g. a q4 export; undefined when completions can. */
function runnableWarning(name: string, dir: string): string | undefined {
  if (ONNX_CANDIDATES.some((file) => fs.existsSync(path.join(dir, file)))) return undefined;
  const what = `${name} has no ONNX graph the completion runtime loads (${ONNX_CANDIDATES.join(', ')})`;
  return hasChatTemplate(dir)
    ? `${what}: it can serve explanations as a chat model; for completions download fp32 or q8`
    : `${what} and no chat template: download fp32 or q8 instead`;
}

function percentOf(p: PullProgress): number | undefined {
  return p.bytesTotal > 0 ? (100 * p.bytesDone) / p.bytesTotal : undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

/** The LSP error of a failed download: cancelled, or RequestFailed with the HubError's message and code. */
function pullError(error: unknown, aborted: boolean, repo: string): ResponseError<PullModel.ErrorData | void> {
  if (error instanceof ResponseError) return error;
  if (error instanceof HubError) {
    if (error.code === 'Cancelled')
      return new ResponseError(LSPErrorCodes.RequestCancelled, `the download of ${repo} was cancelled`, {
        hubError: error.code,
      });
    return new ResponseError(LSPErrorCodes.RequestFailed, error.message, { hubError: error.code });
  }
  if (aborted)
    return new ResponseError(LSPErrorCodes.RequestCancelled, `the download of ${repo} was cancelled`, {
      hubError: 'Cancelled',
    });
  return requestFailed(`downloading ${repo} failed: ${error instanceof Error ? error.message : String(error)}`);
}

/**
 * Before updating a downloaded model, links its pulled files into the staging folder, where the downloader checks
 * them against the manifest and fetches only what changed. A copy when links are not possible.
 */
function seedFromPrevious(target: string, staging: string, files: { path: string }[]): void {
  for (const file of [...files.map((f) => f.path), MANIFEST_FILE]) {
    linkIfMissing(path.join(target, ...file.split('/')), path.join(staging, ...file.split('/')));
  }
}

/** Hard-links (or, across devices, copies) `from` to `to` when `from` exists and `to` does not; true if it did. */
function linkIfMissing(from: string, to: string): boolean {
  if (!fs.existsSync(from) || fs.existsSync(to)) return false;
  fs.mkdirSync(path.dirname(to), { recursive: true });
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
  }
  return true;
}

/**
 * Links the converted graph of the previous download (same commit and dtype) and its external data, so that it is
 * not converted again; false when there is none.
 */
function reuseConversion(target: string, staging: string, dtype: ConversionDtype): boolean {
  const graph = CONVERTED_FILES[dtype];
  if (!fs.existsSync(path.join(target, graph))) return false;
  for (const file of [graph, externalDataFileOf(graph)])
    linkIfMissing(path.join(target, file), path.join(staging, file));
  return true;
}

/** Puts the finished download at `target`, replacing an earlier download of the model. */
function moveIntoPlace(staging: string, target: string): void {
  if (!fs.existsSync(target)) {
    fs.renameSync(staging, target);
    return;
  }
  const old = path.join(path.dirname(staging), `${path.basename(target)}.old-${randomUUID().slice(0, 8)}`);
  fs.renameSync(target, old);
  try {
    fs.renameSync(staging, target);
  } catch (e) {
    fs.renameSync(old, target);
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
}
