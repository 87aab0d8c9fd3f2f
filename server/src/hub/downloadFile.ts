// Downloads one file of a hub repository with resume: bytes go to `<out>/.incomplete/<path>.part`, a part left
// by an earlier try is continued with `Range: bytes=N-`, and the whole file is checked (size, and the LFS
// sha256 or the git blob id) before an atomic rename puts it in place. A file already in place is only checked.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HubError } from './hubError';
import { accessDenied, type HubFetch, transportError } from './hubFetch';
import { formatBytes } from './pullProgress';

export interface RemoteFile {
  /** Path in the repository, '/'-separated. */
  path: string;
  size: number;
  /** sha256 of the content, for LFS files. */
  sha256?: string;
  /** The git blob id (sha1), for files kept in git. */
  gitOid?: string;
}

export interface DownloadContext {
  net: HubFetch;
  endpoint: string;
  repo: string;
  /** The commit the files are fetched at, so that every file comes from the same revision. */
  commit: string;
  outDir: string;
  /** Extra tries after a dropped connection or a 5xx, each resuming where the last one stopped. */
  retries: number;
  retryDelayMs: number;
  signal?: AbortSignal;
  /** Bytes counted for progress: `fromNetwork` false for bytes found on disk; negative to take them back. */
  onBytes(bytes: number, fromNetwork: boolean): void;
  /** Bytes still to download in the whole pull, for the disk-full message. */
  bytesLeft(): number;
}

export interface DownloadedFile {
  path: string;
  size: number;
  sha256: string;
  /** False when the file was already in place. */
  downloaded: boolean;
  /** Set when the download continued a part left by an earlier try, at this offset. */
  resumedAt?: number;
}

export const INCOMPLETE_DIR = '.incomplete';

/** Joins a repository path under a folder, refusing paths that would land outside it. */
export function safeJoin(dir: string, repoPath: string): string {
  const parts = repoPath.split('/');
  if (!repoPath || repoPath.includes('\\') || path.isAbsolute(repoPath) || parts.some((p) => p === '..' || p === ''))
    throw new HubError('BadResponse', `refusing the file path "${repoPath}": it is not a plain relative path`);
  return path.join(dir, ...parts);
}

export function resolveUrl(endpoint: string, repo: string, commit: string, repoPath: string): string {
  const encoded = repoPath.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(commit)}/${encoded}`;
}

/** The hashes a file is checked with, fed as the bytes arrive. */
class FileHashes {
  readonly sha256: Hash = createHash('sha256');
  readonly git?: Hash;

  constructor(size: number, withGit: boolean) {
    if (withGit) this.git = createHash('sha1').update(`blob ${size}\0`);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.git?.update(chunk);
  }
}

async function hashFile(file: string, hashes: FileHashes, signal?: AbortSignal): Promise<void> {
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20, signal })) hashes.update(chunk);
}

/** Checks a complete file against what the hub says: its sha256, or what is wrong with it. */
function check(file: RemoteFile, hashes: FileHashes, length: number): { sha256?: string; problem?: string } {
  const sha256 = hashes.sha256.digest('hex');
  if (length !== file.size) return { problem: `${length} bytes arrived instead of ${file.size}` };
  if (file.sha256 && sha256 !== file.sha256.toLowerCase())
    return { problem: `its sha256 is ${sha256}, the hub says ${file.sha256}` };
  if (!file.sha256 && file.gitOid) {
    const oid = hashes.git!.digest('hex');
    if (oid !== file.gitOid.toLowerCase()) return { problem: `its git blob id is ${oid}, the hub says ${file.gitOid}` };
  }
  return { sha256 };
}

function newHashes(file: RemoteFile): FileHashes {
  return new FileHashes(file.size, !file.sha256 && Boolean(file.gitOid));
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const stat = await fs.promises.stat(file);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

async function diskFull(ctx: DownloadContext, file: RemoteFile, cause: unknown): Promise<HubError> {
  let free = '';
  try {
    const stat = await fs.promises.statfs(ctx.outDir);
    free = ` (${formatBytes(stat.bavail * stat.bsize)} free)`;
  } catch {}
  return new HubError(
    'DiskFull',
    `the disk is full writing ${file.path} in ${ctx.outDir}: ${formatBytes(ctx.bytesLeft())} more are needed` +
      `${free}; free some space and pull again to resume`,
    { cause },
  );
}

export function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The status of a response that is neither the data nor a 416, as a HubError. */
function httpError(ctx: DownloadContext, file: RemoteFile, status: number): HubError {
  if (status === 401 || status === 403) return accessDenied(ctx.repo, ctx.endpoint, status, ctx.net.tokenSent);
  if (status === 404)
    return new HubError(
      'FileNotFound',
      `${ctx.repo} has no file ${file.path} at ${ctx.commit.slice(0, 12)} (HTTP 404 from ${ctx.endpoint})`,
    );
  return new HubError('BadResponse', `HTTP ${status} from ${ctx.endpoint} for ${ctx.repo}/${file.path}`);
}

const retryable = (error: HubError) =>
  error.code === 'NetworkError' || (error.code === 'BadResponse' && /HTTP 5\d\d/.test(error.message));

/** Counts a file's bytes for progress, so that a new try can take back what the last one counted. */
class FileCounter {
  private counted = 0;

  constructor(private readonly ctx: DownloadContext) {}

  add(bytes: number, fromNetwork: boolean): void {
    this.counted += bytes;
    this.ctx.onBytes(bytes, fromNetwork);
  }

  reset(): void {
    if (this.counted !== 0) this.ctx.onBytes(-this.counted, false);
    this.counted = 0;
  }
}

interface PartResult {
  sha256?: string;
  problem?: string;
  /** The offset the part was continued from, when it was. */
  resumedAt?: number;
}

/**
 * Puts one file in place. `trustedSha256` is the sha256 a previous complete pull recorded for it: a file of the
 * right size whose LFS sha256 is that one is not hashed again.
 */
export async function downloadFile(
  file: RemoteFile,
  ctx: DownloadContext,
  trustedSha256?: string,
): Promise<DownloadedFile> {
  const target = safeJoin(ctx.outDir, file.path);
  const part = safeJoin(path.join(ctx.outDir, INCOMPLETE_DIR), `${file.path}.part`);

  if ((await sizeOf(target)) === file.size) {
    if (file.sha256 && trustedSha256 === file.sha256) {
      ctx.onBytes(file.size, false);
      return { path: file.path, size: file.size, sha256: file.sha256, downloaded: false };
    }
    const hashes = newHashes(file);
    await hashFile(target, hashes, ctx.signal);
    const { sha256 } = check(file, hashes, file.size);
    if (sha256) {
      ctx.onBytes(file.size, false);
      return { path: file.path, size: file.size, sha256, downloaded: false };
    }
  }

  await fs.promises.mkdir(path.dirname(part), { recursive: true });
  const counter = new FileCounter(ctx);
  let triesLeft = ctx.retries;
  let freshTryLeft = true; // one more try from zero when a continued part turns out wrong
  let resumedAt: number | undefined;
  for (;;) {
    counter.reset();
    try {
      const result = await fetchIntoPart(file, part, ctx, counter);
      resumedAt ??= result.resumedAt;
      if (result.sha256) {
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.rename(part, target);
        return { path: file.path, size: file.size, sha256: result.sha256, downloaded: true, resumedAt };
      }
      await fs.promises.rm(part, { force: true });
      counter.reset();
      if (result.resumedAt !== undefined && freshTryLeft) {
        freshTryLeft = false; // the part may have come from another version of the file
        continue;
      }
      throw new HubError(
        'ChecksumMismatch',
        `${file.path} of ${ctx.repo} is corrupt: ${result.problem}; the bad download was deleted, pull again`,
      );
    } catch (caught) {
      const error = isDiskFull(caught)
        ? await diskFull(ctx, file, caught)
        : (transportError(caught, ctx.endpoint, ctx.signal) ?? caught);
      if (!(error instanceof HubError) || !retryable(error) || triesLeft <= 0 || ctx.signal?.aborted) throw error;
      triesLeft--;
      await new Promise((resolve) => setTimeout(resolve, ctx.retryDelayMs));
    }
  }
}

/**
 * Fetches the rest of a file into its part (all of it if there is no part) and checks the whole part.
 * Leaves the part as it is when the transfer fails, for the next try to continue.
 */
async function fetchIntoPart(
  file: RemoteFile,
  part: string,
  ctx: DownloadContext,
  counter: FileCounter,
): Promise<PartResult> {
  let offset = (await sizeOf(part)) ?? 0;
  if (offset > file.size) {
    await fs.promises.rm(part, { force: true });
    offset = 0;
  }
  let hashes = newHashes(file);
  if (offset > 0) {
    await hashFile(part, hashes, ctx.signal);
    counter.add(offset, false);
  }
  const resumedAt = offset > 0 ? offset : undefined;
  if (offset > 0 && offset === file.size) return { ...check(file, hashes, offset), resumedAt };

  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  const request = await ctx.net.request(resolveUrl(ctx.endpoint, ctx.repo, ctx.commit, file.path), { headers });
  const { response } = request;
  try {
    if (response.status === 416 && offset > 0) {
      // Nothing past the part: it is the whole file, or it is wrong and gets deleted.
      await response.body?.cancel();
      return { ...check(file, hashes, offset), resumedAt };
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw httpError(ctx, file, response.status);
    }
    if (offset > 0 && !isContinuation(response, offset, file.size)) {
      // A 200 (or a 206 of other bytes): the server sends the whole file, so start the part over.
      counter.reset();
      offset = 0;
      hashes = newHashes(file);
    }
    const length = await writeBody(response, part, offset, hashes, file.size, counter, request.idle);
    if (length < file.size)
      throw new HubError(
        'NetworkError',
        `the download of ${file.path} from ${ctx.endpoint} stopped after ${length} of ${file.size} bytes; ` +
          'pull again to resume',
      );
    return { ...check(file, hashes, length), resumedAt: offset > 0 ? resumedAt : undefined };
  } finally {
    request.done();
  }
}

/** True for a 206 answer that carries the bytes from `offset` of a file of `size` bytes. */
function isContinuation(response: Response, offset: number, size: number): boolean {
  if (response.status !== 206) return false;
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
  return Boolean(match) && Number(match![1]) === offset && (match![2] === '*' || Number(match![2]) === size);
}

/** Appends the body to the part (or writes it anew at offset 0); returns the length the file has then. */
async function writeBody(
  response: Response,
  part: string,
  offset: number,
  hashes: FileHashes,
  size: number,
  counter: FileCounter,
  idle: () => void,
): Promise<number> {
  const handle = await fs.promises.open(part, offset > 0 ? 'a' : 'w');
  let length = offset;
  try {
    for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
      idle();
      length += chunk.length;
      if (length > size) break; // more than the file holds: the check fails and the part is deleted
      await handle.write(chunk);
      hashes.update(chunk);
      counter.add(chunk.length, true);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return length;
}
