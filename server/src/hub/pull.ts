// `pullModel`: fetches what a model needs from a Hugging Face hub repository into a folder. @huggingface/hub
// resolves the revision to a commit and lists the files with sizes and LFS sha256s; our own ranged downloader
// fetches and checks each file; the `.pull.json` manifest is written last. Offline mode only reads that manifest.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HubApiError, type ListFileEntry, listFiles, modelInfo } from '@huggingface/hub';
import { defaultPullFolder } from './defaultModelsCache';
import {
  type DownloadContext,
  type DownloadedFile,
  downloadFile,
  INCOMPLETE_DIR,
  isDiskFull,
  type RemoteFile,
} from './downloadFile';
import { HubError } from './hubError';
import { accessDenied, HubFetch, transportError } from './hubFetch';
import { resolveHubSettings } from './hubSettings';
import {
  type ManifestFile,
  missingFiles,
  type PullManifest,
  readManifest,
  removeManifest,
  writeManifest,
} from './pullManifest';
import { formatBytes, type PullProgress, ProgressTracker } from './pullProgress';
import {
  DTYPES,
  type Dtype,
  type FileSelection,
  isSelectionFailure,
  CONVERTIBLE_DTYPES,
  ONNX_FILES,
  SAFETENSORS_FILE,
  SAFETENSORS_INDEX,
  selectFiles,
  shardsOfIndex,
} from './selectFiles';

export interface PullOptions {
  /** `owner/name` on the hub. */
  repo: string;
  /** Branch, tag or commit; 'main' by default. Offline, a pull of any revision is accepted unless one is given. */
  revision?: string;
  /** Which ONNX export to take; 'fp32' by default. */
  dtype?: Dtype;
  /** The model folder; `defaultPullFolder(repo, revision)` by default. */
  out?: string;
  /** The hub; HF_ENDPOINT or https://huggingface.co by default. */
  endpoint?: string;
  /** The token; HF_TOKEN or HUGGING_FACE_HUB_TOKEN by default; '' sends none. */
  token?: string;
  /** Make no request; HF_HUB_OFFLINE by default. */
  offline?: boolean;
  signal?: AbortSignal;
  /** Called at most ~10 times a second while the pull runs, and once at the end. */
  onProgress?: (progress: PullProgress) => void;
  /** Each HTTP request as it is sent (for a log). */
  onRequest?: (method: string, url: string) => void;
  /** The environment the settings are read from; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Extra tries of a file after a dropped connection or a 5xx, each resuming; 3 by default. */
  retries?: number;
  retryDelayMs?: number;
  /** Milliseconds without an answer or data before a request is given up; HF_HUB_DOWNLOAD_TIMEOUT or 10 s. */
  timeoutMs?: number;
}

export interface PullResult {
  /** The model folder. */
  dir: string;
  repo: string;
  revision: string;
  commit: string;
  dtype: Dtype;
  weights: 'onnx' | 'safetensors';
  files: ManifestFile[];
  manifest: PullManifest;
  /** True when nothing was fetched because of offline mode. */
  offline: boolean;
  /** Bytes fetched from the network. */
  downloadedBytes: number;
  /** Files that were already in place and only checked. */
  reusedFiles: string[];
  /** Files whose download continued a part left by an earlier pull. */
  resumedFiles: string[];
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

export function isRepoId(repo: string): boolean {
  return REPO_ID.test(repo) && !repo.includes('--') && !repo.includes('..');
}

export async function pullModel(options: PullOptions): Promise<PullResult> {
  const repo = options.repo?.trim();
  if (!repo || !isRepoId(repo))
    throw new HubError('InvalidArgument', `"${options.repo}" is not a hub model id: expected owner/name`);
  const dtype = options.dtype ?? 'fp32';
  if (!DTYPES.includes(dtype))
    throw new HubError('InvalidArgument', `unknown dtype "${dtype}": expected ${DTYPES.join(', ')}`);
  const revision = options.revision?.trim() || 'main';
  const dir = path.resolve(options.out ?? defaultPullFolder(repo, revision));
  const settings = resolveHubSettings(options, options.env);
  const tracker = new ProgressTracker(options.onProgress);

  if (settings.offline) return pullOffline(repo, options, dtype, dir, tracker);

  try {
    new URL(settings.endpoint);
  } catch {
    throw new HubError('InvalidArgument', `the hub endpoint "${settings.endpoint}" is not a URL (see HF_ENDPOINT)`);
  }
  const net = new HubFetch({
    token: settings.token,
    signal: options.signal,
    timeoutMs: settings.timeoutMs,
    onRequest: options.onRequest,
  });
  const hub = new HubCalls(net, settings.endpoint, repo, revision, settings.token);
  try {
    return await pullOnline({ repo, revision, dtype, dir, options, hub, net, tracker, endpoint: settings.endpoint });
  } catch (error) {
    if (isDiskFull(error))
      throw new HubError('DiskFull', `the disk is full in ${dir}: free some space and pull again to resume`, {
        cause: error,
      });
    throw transportError(error, settings.endpoint, options.signal) ?? error;
  }
}

/** The two calls made with @huggingface/hub, their errors turned into HubErrors. */
class HubCalls {
  constructor(
    private readonly net: HubFetch,
    private readonly endpoint: string,
    private readonly repo: string,
    private readonly revision: string,
    token: string | undefined,
  ) {
    // The library refuses tokens without the hf_ prefix; HubFetch sends any token itself.
    this.credentials = token?.startsWith('hf_') ? { accessToken: token } : {};
  }

  private readonly credentials: { accessToken?: string };

  private get common() {
    return { hubUrl: this.endpoint, fetch: this.net.fetch, ...this.credentials };
  }

  /** The commit sha the revision points at. */
  async commit(): Promise<string> {
    try {
      const info = await modelInfo({
        name: this.repo,
        revision: this.revision,
        additionalFields: ['sha'],
        ...this.common,
      });
      if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha))
        throw new HubError('BadResponse', `${this.endpoint} gave no commit for ${this.repo} at "${this.revision}"`);
      return info.sha;
    } catch (error) {
      throw this.translate(error);
    }
  }

  /** Every file of the repository at the commit. */
  async files(commit: string): Promise<ListFileEntry[]> {
    const entries: ListFileEntry[] = [];
    try {
      const repo = { type: 'model' as const, name: this.repo };
      for await (const entry of listFiles({ repo, revision: commit, recursive: true, ...this.common }))
        if (entry.type === 'file') entries.push(entry);
      return entries;
    } catch (error) {
      throw this.translate(error);
    }
  }

  private translate(error: unknown): unknown {
    if (!(error instanceof HubApiError)) return error;
    const status = error.statusCode;
    if (status === 401 || status === 403) return accessDenied(this.repo, this.endpoint, status, this.net.tokenSent);
    if (status === 404) {
      const said = String((error.data as { error?: unknown } | undefined)?.error ?? '');
      if (this.net.lastErrorCode === 'RevisionNotFound' || /\brev(ision)?\b/i.test(said))
        return new HubError('RevisionNotFound', `${this.repo} has no revision "${this.revision}" on ${this.endpoint}`);
      return new HubError(
        'RepoNotFound',
        `no model ${this.repo} on ${this.endpoint} (HTTP 404): check the id, which is owner/name as on the model page`,
      );
    }
    return new HubError('BadResponse', `HTTP ${status} from ${this.endpoint} for ${this.repo}: ${error.message}`, {
      cause: error,
    });
  }
}

interface OnlinePull {
  repo: string;
  revision: string;
  dtype: Dtype;
  dir: string;
  endpoint: string;
  options: PullOptions;
  hub: HubCalls;
  net: HubFetch;
  tracker: ProgressTracker;
}

async function pullOnline(pull: OnlinePull): Promise<PullResult> {
  const { repo, revision, dtype, dir, endpoint, options, tracker } = pull;
  tracker.resolving();
  const commit = await pull.hub.commit();
  const entries = await pull.hub.files(commit);
  const remote = new Map(entries.map((entry) => [entry.path, remoteFile(entry)]));
  const paths = [...remote.keys()];
  let selection = chosen(selectFiles(paths, dtype), repo, revision, dtype, paths);

  const previous = readManifest(dir);
  const trusted = new Map((previous?.files ?? []).map((file) => [file.path, file.sha256]));
  fs.mkdirSync(dir, { recursive: true });
  removeManifest(dir); // the folder is about to change: it is not a complete pull until the new manifest
  const ctx: DownloadContext = {
    net: pull.net,
    endpoint,
    repo,
    commit,
    outDir: dir,
    retries: options.retries ?? 3,
    retryDelayMs: options.retryDelayMs ?? 1000,
    signal: options.signal,
    onBytes: (bytes, fromNetwork) => tracker.add(bytes, fromNetwork),
    bytesLeft: () => tracker.snapshot.bytesTotal - tracker.snapshot.bytesDone,
  };

  if (selection.needsShardIndex) {
    const index = await downloadFile(remote.get(selection.needsShardIndex)!, { ...ctx, onBytes: () => {} });
    let shards: string[];
    try {
      shards = shardsOfIndex(fs.readFileSync(path.join(dir, index.path), 'utf8'));
    } catch (error) {
      throw new HubError('BadResponse', `${repo}'s ${SAFETENSORS_INDEX} cannot be read: ${(error as Error).message}`);
    }
    const absent = shards.find((shard) => !remote.has(shard));
    if (absent)
      throw new HubError('FileNotFound', `${repo} has no file ${absent}, a shard its ${SAFETENSORS_INDEX} lists`);
    selection = chosen(selectFiles(paths, dtype, shards), repo, revision, dtype, paths);
  }

  const files = selection.files.map((p) => remote.get(p)!);
  const bytesTotal = files.reduce((sum, file) => sum + file.size, 0);
  await checkFreeSpace(dir, files);
  tracker.start(files.length, bytesTotal);
  const done: DownloadedFile[] = [];
  for (const file of files) {
    tracker.file(file.path);
    done.push(await downloadFile(file, ctx, trusted.get(file.path)));
    tracker.fileDone();
  }
  fs.rmSync(path.join(dir, INCOMPLETE_DIR), { recursive: true, force: true });

  const manifest: PullManifest = {
    format: 1,
    repo,
    revision,
    commit,
    dtype,
    weights: selection.weights,
    endpoint,
    files: done.map(({ path: p, size, sha256 }) => ({ path: p, size, sha256 })),
    pulledAt: new Date().toISOString(),
  };
  options.signal?.throwIfAborted();
  writeManifest(dir, manifest);
  tracker.finish();
  return {
    ...resultOf(dir, manifest, false),
    downloadedBytes: tracker.snapshot.bytesDownloaded,
    reusedFiles: done.filter((file) => !file.downloaded).map((file) => file.path),
    resumedFiles: done.filter((file) => file.resumedAt !== undefined).map((file) => file.path),
  };
}

function remoteFile(entry: ListFileEntry): RemoteFile {
  return entry.lfs
    ? { path: entry.path, size: entry.lfs.size, sha256: entry.lfs.oid }
    : { path: entry.path, size: entry.size, gitOid: entry.oid };
}

/** The selection, or the HubError saying why the repository has no model for the dtype. */
function chosen(
  selection: ReturnType<typeof selectFiles>,
  repo: string,
  revision: string,
  dtype: Dtype,
  paths: string[],
): FileSelection {
  if (!isSelectionFailure(selection)) return selection;
  if (selection.missing === 'config')
    throw new HubError('FileNotFound', `${repo} has no file config.json at "${revision}": it is not a model repo`);
  if (selection.missing === 'export')
    throw new HubError(
      'NoWeights',
      `${repo} has no ${dtype} ONNX export (${ONNX_FILES[dtype].join(' or ')}); its safetensors weights can be ` +
        `converted to ${CONVERTIBLE_DTYPES.join(' or ')} instead: pull it with --dtype q8 (int8, the smallest)`,
    );
  const onnx = selection.onnxFiles.length ? `; its ONNX files are ${selection.onnxFiles.join(', ')}` : '';
  throw new HubError(
    'NoWeights',
    `${repo} has no weights to pull for ${dtype}: neither ${ONNX_FILES[dtype].join(' nor ')} nor ` +
      `${SAFETENSORS_FILE} (or ${SAFETENSORS_INDEX}) among its ${paths.length} files${onnx}`,
  );
}

/** Fails before downloading when the disk clearly cannot hold what is left to fetch. */
async function checkFreeSpace(dir: string, files: RemoteFile[]): Promise<void> {
  let needed = 0;
  for (const file of files) {
    const have = (p: string) =>
      fs.promises.stat(p).then(
        (s) => s.size,
        () => 0,
      );
    const target = path.join(dir, ...file.path.split('/'));
    if ((await have(target)) === file.size) continue;
    needed += Math.max(0, file.size - (await have(path.join(dir, INCOMPLETE_DIR, ...`${file.path}.part`.split('/')))));
  }
  let free: number;
  try {
    const stat = await fs.promises.statfs(dir);
    free = stat.bavail * stat.bsize;
  } catch {
    return;
  }
  if (needed > free)
    throw new HubError(
      'DiskFull',
      `not enough disk space in ${dir}: the pull needs ${formatBytes(needed)} more, ${formatBytes(free)} are free`,
    );
}

function resultOf(dir: string, manifest: PullManifest, offline: boolean) {
  return {
    dir,
    repo: manifest.repo,
    revision: manifest.revision,
    commit: manifest.commit,
    dtype: manifest.dtype,
    weights: manifest.weights,
    files: manifest.files,
    manifest,
    offline,
  };
}

/** Offline: no request at all; the folder must hold a complete pull of the repo (and revision/dtype if given). */
function pullOffline(
  repo: string,
  options: PullOptions,
  dtype: Dtype,
  dir: string,
  tracker: ProgressTracker,
): PullResult {
  const fail = (why: string) =>
    new HubError('OfflineNotCached', `offline mode (HF_HUB_OFFLINE) is on and ${why}; pull it once with the network`);
  const manifest = readManifest(dir);
  if (!manifest) throw fail(`${dir} has no complete pull of ${repo} (no .pull.json)`);
  if (manifest.repo !== repo) throw fail(`${dir} holds ${manifest.repo}, not ${repo}`);
  const revision = options.revision?.trim();
  const sameCommit = revision && revision.length >= 7 && manifest.commit.startsWith(revision);
  if (revision && revision !== manifest.revision && !sameCommit)
    throw fail(`${dir} holds ${repo} at "${manifest.revision}", not at "${revision}"`);
  if (options.dtype && dtype !== manifest.dtype)
    throw fail(`${dir} holds the ${manifest.dtype} files of ${repo}, not the ${dtype} ones`);
  const missing = missingFiles(dir, manifest);
  if (missing.length) throw fail(`${dir} lacks ${missing.join(', ')} of its pull of ${repo}`);
  const bytes = manifest.files.reduce((sum, file) => sum + file.size, 0);
  tracker.finishAll(manifest.files.length, bytes);
  return {
    ...resultOf(dir, manifest, true),
    downloadedBytes: 0,
    reusedFiles: manifest.files.map((f) => f.path),
    resumedFiles: [],
  };
}
