// A fake Hugging Face hub on 127.0.0.1 for tests: the model info, tree and resolve endpoints that
// @huggingface/hub and the pull downloader use, with LFS metadata, Range requests, redirects to a CDN-like path,
// private and gated repos, 404s, and faults (a connection dropped after N bytes, wrong bytes). It logs requests.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface RepoSpec {
  /** Repository path → content. */
  files: Record<string, string | Uint8Array>;
  /** Branch and tag names that resolve to the commit (the commit sha itself always does); ['main'] by default. */
  refs?: string[];
  /** 'private': everything needs the token; 'gated': info and tree are public, files need the token. */
  access?: 'public' | 'private' | 'gated';
  token?: string;
  /** Which files are stored with LFS; by default weights and anything of 1 kB or more. */
  isLfs?: (path: string, size: number) => boolean;
}

export interface ServedFile {
  path: string;
  content: Buffer;
  size: number;
  sha256: string;
  /** The git blob id of the content, or of the LFS pointer for LFS files. */
  oid: string;
  lfs: boolean;
}

export interface ServedRepo {
  id: string;
  sha: string;
  refs: string[];
  access: 'public' | 'private' | 'gated';
  token?: string;
  files: Map<string, ServedFile>;
}

export interface LoggedRequest {
  method: string;
  /** The path and query as sent. */
  url: string;
  pathname: string;
  range?: string;
  authorization?: string;
  status?: number;
}

export interface HubServerOptions {
  /** Answer resolve requests of LFS files with a 302 to /cdn/… on the same server. */
  redirectLfs?: boolean;
  /** Tree entries per page; more are paged with a Link header. */
  pageSize?: number;
}

const WEIGHTS = /\.(onnx|onnx_data(_\d+)?|safetensors|bin|gguf)$/;

function gitOid(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

/** Every file under a folder, as a RepoSpec `files` map with '/'-separated paths. */
export function filesFromDir(dir: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, full).split(path.sep).join('/')] = fs.readFileSync(full);
  }
  return files;
}

export class HubServer {
  readonly requests: LoggedRequest[] = [];
  readonly repos = new Map<string, ServedRepo>();
  private readonly drops = new Map<string, { bytes: number; times: number }>();
  private readonly stalls = new Map<string, number>();
  private readonly corrupted = new Set<string>();
  private readonly hidden = new Set<string>();

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly options: HubServerOptions,
  ) {}

  static async start(options: HubServerOptions = {}): Promise<HubServer> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const hub = new HubServer(server, `http://127.0.0.1:${port}`, options);
    server.on('request', (req, res) => hub.handle(req, res));
    return hub;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  addRepo(id: string, spec: RepoSpec): ServedRepo {
    const files = new Map<string, ServedFile>();
    for (const [p, raw] of Object.entries(spec.files)) {
      const content = Buffer.from(raw);
      const sha256 = createHash('sha256').update(content).digest('hex');
      const lfs = spec.isLfs ? spec.isLfs(p, content.length) : WEIGHTS.test(p) || content.length >= 1024;
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${content.length}\n`;
      const oid = gitOid(lfs ? Buffer.from(pointer) : content);
      files.set(p, { path: p, content, size: content.length, sha256, oid, lfs });
    }
    const sha = createHash('sha1')
      .update(id)
      .update([...files.values()].map((f) => `${f.path}:${f.oid}`).join('\n'))
      .digest('hex');
    const repo: ServedRepo = {
      id,
      sha,
      refs: spec.refs ?? ['main'],
      access: spec.access ?? 'public',
      token: spec.token,
      files,
    };
    this.repos.set(id, repo);
    return repo;
  }

  /** Drops the connection after `bytes` bytes of the file's body, the next `times` times it is served. */
  dropAfter(repo: string, file: string, bytes: number, times = 1): void {
    this.drops.set(`${repo}/${file}`, { bytes, times });
  }

  /** Sends the first `bytes` bytes of the file and then nothing more (until the server closes). */
  stallAfter(repo: string, file: string, bytes: number): void {
    this.stalls.set(`${repo}/${file}`, bytes);
  }

  /** Serves the file with one byte changed (same length). */
  corrupt(repo: string, file: string): void {
    this.corrupted.add(`${repo}/${file}`);
  }

  /** Lists the file in the tree but answers 404 when it is fetched. */
  hideFile(repo: string, file: string): void {
    this.hidden.add(`${repo}/${file}`);
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** The requests whose path starts with the prefix. */
  requestsTo(prefix: string): LoggedRequest[] {
    return this.requests.filter((r) => r.pathname.startsWith(prefix));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const logged: LoggedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      pathname: url.pathname,
      range: req.headers.range,
      authorization: req.headers.authorization,
    };
    this.requests.push(logged);
    res.on('finish', () => (logged.status = res.statusCode));
    res.on('close', () => (logged.status ??= res.statusCode));
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        this.json(res, 405, { error: 'Method not allowed' });
        return;
      }
      if (segments[0] === 'api' && segments[1] === 'models') {
        this.api(req, res, url, segments.slice(2));
        return;
      }
      if (segments[0] === 'cdn') {
        this.cdn(req, res, segments.slice(1));
        return;
      }
      if (segments[2] === 'resolve') {
        this.resolve(req, res, segments);
        return;
      }
      this.json(res, 404, { error: 'Not found' });
    } catch (error) {
      this.json(res, 500, { error: String(error) });
    }
  }

  private json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(text);
  }

  private notFound(res: http.ServerResponse, code: string, message: string): void {
    this.json(res, 404, { error: message }, { 'x-error-code': code, 'x-error-message': message });
  }

  /** The repo, or undefined after answering 404/401. `files` is true for file downloads (gated repos). */
  private repoFor(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    id: string,
    files: boolean,
  ): ServedRepo | undefined {
    const repo = this.repos.get(id);
    if (!repo) {
      this.notFound(res, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    const needsToken = repo.access === 'private' || (repo.access === 'gated' && files);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (needsToken && bearer !== repo.token) {
      const gated = repo.access === 'gated';
      const status = gated && bearer ? 403 : 401;
      const message = gated ? `Access to model ${id} is restricted.` : 'Invalid username or password.';
      this.json(res, status, { error: message }, { 'x-error-code': gated ? 'GatedRepo' : 'RepoNotFound' });
      return undefined;
    }
    return repo;
  }

  private revisionOk(repo: ServedRepo, rev: string): boolean {
    return rev === repo.sha || rev === 'HEAD' || repo.refs.includes(rev);
  }

  private api(req: http.IncomingMessage, res: http.ServerResponse, url: URL, rest: string[]): void {
    const id = `${rest[0]}/${rest[1]}`;
    const repo = this.repoFor(req, res, id, false);
    if (!repo) return;
    const kind = rest[2];
    const rev = kind === undefined ? 'main' : rest[3];
    if (kind !== undefined && kind !== 'revision' && kind !== 'tree') {
      this.notFound(res, 'NotFound', 'Not found');
      return;
    }
    if (!rev || !this.revisionOk(repo, rev)) {
      this.notFound(res, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return;
    }
    if (kind === 'tree') {
      this.tree(res, url, repo, rest.slice(4).join('/'));
      return;
    }
    this.json(res, 200, {
      _id: `id-${repo.sha.slice(0, 24)}`,
      id: repo.id,
      modelId: repo.id,
      sha: repo.sha,
      private: repo.access === 'private',
      gated: repo.access === 'gated' ? 'manual' : false,
      disabled: false,
      downloads: 0,
      likes: 0,
      tags: [],
      library_name: 'transformers.js',
      pipeline_tag: 'text-generation',
      lastModified: '2025-01-01T00:00:00.000Z',
      createdAt: '2025-01-01T00:00:00.000Z',
      siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
    });
  }

  private tree(res: http.ServerResponse, url: URL, repo: ServedRepo, folder: string): void {
    const recursive = ['1', 'true'].includes(url.searchParams.get('recursive') ?? '');
    const prefix = folder ? `${folder}/` : '';
    const entries: object[] = [];
    const dirs = new Set<string>();
    for (const file of [...repo.files.values()].sort((a, b) => a.path.localeCompare(b.path))) {
      if (!file.path.startsWith(prefix)) continue;
      const parts = file.path.slice(prefix.length).split('/');
      for (let depth = 1; depth < parts.length && (recursive || depth === 1); depth++) {
        const dir = prefix + parts.slice(0, depth).join('/');
        if (!dirs.has(dir)) entries.push({ type: 'directory', oid: gitOid(Buffer.from(dir)), size: 0, path: dir });
        dirs.add(dir);
      }
      if (!recursive && parts.length > 1) continue;
      entries.push({
        type: 'file',
        oid: file.oid,
        size: file.size,
        path: file.path,
        ...(file.lfs ? { lfs: { oid: file.sha256, size: file.size, pointerSize: 134 } } : {}),
      });
    }
    if (folder && entries.length === 0) {
      this.notFound(res, 'EntryNotFound', `${folder} does not exist`);
      return;
    }
    const pageSize = this.options.pageSize ?? 1000;
    const start = Number(url.searchParams.get('cursor') ?? 0);
    const headers: Record<string, string> = {};
    if (start + pageSize < entries.length) {
      const next = new URL(url.href);
      next.searchParams.set('cursor', String(start + pageSize));
      headers.link = `<${next.href}>; rel="next"`;
    }
    this.json(res, 200, entries.slice(start, start + pageSize), headers);
  }

  private resolve(req: http.IncomingMessage, res: http.ServerResponse, segments: string[]): void {
    const id = `${segments[0]}/${segments[1]}`;
    const repo = this.repoFor(req, res, id, true);
    if (!repo) return;
    const rev = segments[3];
    if (!rev || !this.revisionOk(repo, rev)) {
      this.notFound(res, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return;
    }
    const filePath = segments.slice(4).join('/');
    const file = repo.files.get(filePath);
    if (!file || this.hidden.has(`${id}/${filePath}`)) {
      this.notFound(res, 'EntryNotFound', 'Entry not found');
      return;
    }
    const common = { 'x-repo-commit': repo.sha, 'access-control-expose-headers': 'X-Repo-Commit, ETag' };
    if (file.lfs && this.options.redirectLfs) {
      res.writeHead(302, {
        ...common,
        location: `${this.url}/cdn/${id}/${file.sha256}`,
        etag: `"${file.oid}"`,
        'x-linked-etag': `"${file.sha256}"`,
        'x-linked-size': String(file.size),
      });
      return void res.end();
    }
    this.sendFile(req, res, id, file, { ...common, etag: `"${file.lfs ? file.sha256 : file.oid}"` });
  }

  private cdn(req: http.IncomingMessage, res: http.ServerResponse, segments: string[]): void {
    const id = `${segments[0]}/${segments[1]}`;
    const file = [...(this.repos.get(id)?.files.values() ?? [])].find((f) => f.sha256 === segments[2]);
    if (!file) {
      this.json(res, 404, { error: 'NoSuchKey' });
      return;
    }
    this.sendFile(req, res, id, file, { etag: `"${file.sha256}"` });
  }

  private sendFile(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    repoId: string,
    file: ServedFile,
    headers: Record<string, string>,
  ): void {
    const key = `${repoId}/${file.path}`;
    let content = file.content;
    if (this.corrupted.has(key) && content.length > 0) {
      content = Buffer.from(content);
      content[content.length >> 1] ^= 0xff;
    }
    let start = 0;
    let end = content.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= content.length) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${content.length}` });
        return void res.end();
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${content.length}`;
    }
    const body = content.subarray(start, end + 1);
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      'accept-ranges': 'bytes',
    });
    if (req.method === 'HEAD') return void res.end();
    const drop = this.drops.get(key);
    if (drop && drop.times > 0) {
      drop.times--;
      // Give the client a moment to read the bytes: a stream that errors drops the chunks it still queues.
      res.write(body.subarray(0, drop.bytes), () => setTimeout(() => res.socket?.destroy(), 30));
      return;
    }
    const stall = this.stalls.get(key);
    if (stall !== undefined) return void res.write(body.subarray(0, stall));
    res.end(body);
  }
}
