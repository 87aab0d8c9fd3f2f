// Collects the training corpus from a workspace: walks it honouring .gitignore files, skips dependency and
// build directories, binaries, huge, minified, generated and lock files, and never reads secrets (source code is
// judged by its content, other files by name first). An allow-list overrides the heuristics. Also splits the
// files reproducibly into train/validation and snapshots the corpus for the model card.
import { createHash } from 'node:crypto';
import { promises as fs, type Dirent } from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { findSecretInContent, isSecretFileName, secretFileNameReason } from './secrets';

export interface CorpusFile {
  /** Relative to the workspace root, forward slashes. */
  path: string;
  text: string;
  /** Size on disk in bytes. */
  bytes: number;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
}

export interface ExcludedFile {
  /** Relative path; directories end with "/". */
  path: string;
  /** Short stable reason: "gitignored", "secret file name", "secret content: private key", "binary", ... */
  reason: string;
}

export interface Corpus {
  /** Absolute path of the workspace that was walked. */
  root: string;
  /** Included files, sorted by path. */
  files: CorpusFile[];
  /** Excluded files and directories, sorted by path. Files that are simply not source are only counted. */
  excluded: ExcludedFile[];
  /** Files skipped because their extension is not a source/text one, counted by extension ("" = none). */
  notSourceByExtension: Record<string, number>;
}

export interface CollectCorpusOptions {
  /** Files larger than this are excluded as "too large" without being read. Default 1 MB. */
  maxFileBytes?: number;
  /** Extensions to include (with or without the dot), replacing the default source/text list. */
  extensions?: string[];
  /**
   * Gitignore-style patterns of files kept even when a heuristic would exclude them (secret-looking name or
   * content, minified, generated, lock or data file); .gitignore, binaries and the size limit still apply.
   */
  allow?: string[];
}

/** Extensions of common programming, markup and config languages included by default. */
// biome-ignore format: a table reads better in rows
export const defaultSourceExtensions: readonly string[] = [
  'ts', 'tsx', 'mts', 'cts', 'js', 'jsx', 'mjs', 'cjs', 'py', 'pyi', 'go', 'rs', 'java', 'kt', 'kts', 'scala',
  'groovy', 'gradle', 'c', 'h', 'cc', 'cpp', 'cxx', 'hh', 'hpp', 'hxx', 'm', 'mm', 'cs', 'fs', 'vb', 'rb', 'php',
  'swift', 'dart', 'lua', 'pl', 'pm', 'r', 'jl', 'ex', 'exs', 'erl', 'hs', 'ml', 'mli', 'clj', 'cljs', 'elm', 'zig',
  'nim', 'sh', 'bash', 'zsh', 'fish', 'ps1', 'bat', 'cmd', 'sql', 'graphql', 'gql', 'proto', 'html', 'htm', 'css',
  'scss', 'sass', 'less', 'vue', 'svelte', 'astro', 'md', 'mdx', 'rst', 'tex', 'json', 'jsonc', 'json5', 'yaml',
  'yml', 'toml', 'ini', 'cfg', 'xml', 'cmake', 'tf', 'hcl', 'nix',
];

/** Extension-less (or oddly named) files that are source. */
// biome-ignore format: a table reads better in rows
const sourceFileNames = new Set([
  'makefile', 'gnumakefile', 'dockerfile', 'containerfile', 'jenkinsfile', 'rakefile', 'gemfile', 'vagrantfile',
  'cmakelists.txt', 'justfile', 'procfile', 'build', 'workspace',
]);

/** Directories never walked, with the reason recorded once for the directory. */
// biome-ignore format: a table reads better in rows
const excludedDirectories = new Map<string, string>([
  ['.git', 'version control'], ['.hg', 'version control'], ['.svn', 'version control'],
  ['node_modules', 'dependencies'], ['bower_components', 'dependencies'], ['jspm_packages', 'dependencies'],
  ['vendor', 'dependencies'], ['Pods', 'dependencies'], ['.venv', 'dependencies'], ['venv', 'dependencies'],
  ['.tox', 'dependencies'], ['.yarn', 'dependencies'], ['.pnpm-store', 'dependencies'], ['.dart_tool', 'dependencies'],
  ['site-packages', 'dependencies'], ['.terraform', 'dependencies'],
  ['out', 'build output'], ['dist', 'build output'], ['build', 'build output'], ['coverage', 'build output'],
  ['.next', 'build output'], ['.nuxt', 'build output'], ['.svelte-kit', 'build output'], ['.angular', 'build output'],
  ['.output', 'build output'], ['target', 'build output'], ['obj', 'build output'], ['DerivedData', 'build output'],
  ['.gradle', 'build output'], ['.nyc_output', 'build output'], ['storybook-static', 'build output'],
  ['__pycache__', 'cache'], ['.mypy_cache', 'cache'], ['.pytest_cache', 'cache'], ['.ruff_cache', 'cache'],
  ['.cache', 'cache'], ['.parcel-cache', 'cache'], ['.turbo', 'cache'],
  ['.idea', 'editor settings'], ['.vs', 'editor settings'],
  ['.ssh', 'secret file name'], ['.gnupg', 'secret file name'], ['.aws', 'secret file name'],
]);

/** Lock files (lower case names), and the generic `*.lock` / `*.lockfile` endings. */
// biome-ignore format: a table reads better in rows
const lockFileNames = new Set([
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'bun.lock', 'cargo.lock',
  'poetry.lock', 'pipfile.lock', 'composer.lock', 'gemfile.lock', 'go.sum', 'go.work.sum', 'flake.lock',
  'packages.lock.json', 'mix.lock', 'pubspec.lock', 'podfile.lock', 'uv.lock', 'pdm.lock', 'gradle.lockfile',
  'deno.lock', 'package.resolved', 'paket.lock', 'conan.lock',
]);

/** File names that are generated whatever their content. */
// biome-ignore format: a table reads better in rows
const generatedNamePatterns: RegExp[] = [
  /\.map$/, // source maps
  /\.pb\.go$/, /_pb2(_grpc)?\.pyi?$/, /\.pb\.(cc|h)$/, /_pb\.(js|d\.ts)$/, /\.g\.dart$/, /\.freezed\.dart$/,
  /\.designer\.cs$/, /\.generated\.\w+$/, /\.gen\.(go|ts|js)$/, /^zz_generated\./,
];

/** Header markers of generated files, looked for in the first lines. */
const generatedHeaderPattern =
  /@generated\b|Code generated .* DO NOT EDIT|<auto-?generated|\b(?:auto-?generated|automatically generated|generated (?:automatically|by))\b[^\n]*\n?[^\n]*\bdo not (?:edit|modify)\b|\bdo not (?:edit|modify)\b[^\n]*\n?[^\n]*\b(?:auto-?generated|automatically generated|generated by)\b|This file (?:is|was) (?:auto-?generated|automatically generated)/i;

/** Extensions of the default list that are prose, markup or data rather than code. */
// biome-ignore format: a table reads better in rows
const notCodeExtensions = new Set([
  'md', 'mdx', 'rst', 'tex', 'txt', 'json', 'jsonc', 'json5', 'yaml', 'yml', 'toml', 'ini', 'cfg', 'xml',
]);

/** True for a file of a programming language (by extension or a known name such as Makefile). */
export function isCodeFile(fileName: string): boolean {
  const name = path.posix.basename(fileName).toLowerCase();
  const extension = extensionOf(name);
  return (
    sourceFileNames.has(name) || (defaultSourceExtensions.includes(extension) && !notCodeExtensions.has(extension))
  );
}

/** Prose extensions, whose unwrapped paragraphs may legitimately be long. */
const proseExtensions = new Set(['md', 'mdx', 'rst', 'tex', 'txt']);

const defaultMaxFileBytes = 1_000_000;
/** Concurrent file reads while collecting. */
const readConcurrency = 16;

function extensionOf(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  return dot <= 0 ? '' : fileName.slice(dot + 1).toLowerCase();
}

/** A .gitignore's rules and the directory (relative, posix, "" for the root) they are relative to. */
interface IgnoreScope {
  base: string;
  rules: Ignore;
}

/** Git's precedence: later (deeper) files override earlier ones, a negation re-includes. */
function isGitIgnored(scopes: IgnoreScope[], relativePath: string, isDirectory: boolean): boolean {
  let ignored = false;
  for (const { base, rules } of scopes) {
    const local = base === '' ? relativePath : relativePath.slice(base.length + 1);
    const result = rules.test(isDirectory ? `${local}/` : local);
    if (result.ignored) ignored = true;
    else if (result.unignored) ignored = false;
  }
  return ignored;
}

async function readIgnoreFile(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

function newRules(): Ignore {
  // Git compares case-sensitively on Linux and insensitively on the default macOS/Windows file systems.
  return ignore({ ignorecase: process.platform !== 'linux', allowRelativePaths: true });
}

/** Length of the longest line and the mean line length. */
function lineStatistics(text: string): { longest: number; mean: number } {
  let longest = 0;
  let lines = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    longest = Math.max(longest, end - start);
    lines++;
    start = end + 1;
  }
  return { longest, mean: text.length / Math.max(lines, 1) };
}

/**
 * Minified code is mostly very long lines with little white space; a source file with a few long lines (a test's
 * long string, a table) is not.
 */
function isMinified(text: string, extension: string): boolean {
  const { longest } = lineStatistics(text);
  if (proseExtensions.has(extension)) return longest > 10_000; // unwrapped paragraphs are normal in prose
  if (longest <= 1_000) return false;
  let longChars = 0;
  let longSpaces = 0;
  for (const line of text.split('\n')) {
    if (line.length <= 500) continue;
    longChars += line.length;
    for (let i = 0; i < line.length; i++) if (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9) longSpaces++;
  }
  return longChars > 0.5 * text.length && longSpaces < 0.12 * longChars;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes strict UTF-8, or returns undefined for binary content (a NUL byte or invalid UTF-8). */
function decodeText(buffer: Buffer): string | undefined {
  if (buffer.includes(0)) return undefined;
  try {
    return utf8.decode(buffer);
  } catch {
    return undefined;
  }
}

/** A file that passed the name checks and will be read. */
interface Candidate {
  relativePath: string;
  absolutePath: string;
  extension: string;
  /** On the allow-list: only .gitignore, binary content and the size limit exclude it. */
  allowed: boolean;
}

/**
 * Walks `workspace` and returns the source files to train on, plus every exclusion with its reason.
 * Secret-named files are excluded without being opened; others are read once and checked for content.
 */
export async function collectCorpus(workspace: string, options: CollectCorpusOptions = {}): Promise<Corpus> {
  const root = path.resolve(workspace);
  const rootStat = await fs.stat(root).catch(() => undefined);
  if (!rootStat) throw new Error(`workspace ${root} does not exist`);
  if (!rootStat.isDirectory()) throw new Error(`workspace ${root} is not a folder`);
  const allowed = options.allow?.length ? newRules().add(options.allow) : undefined;
  const maxFileBytes = options.maxFileBytes ?? defaultMaxFileBytes;
  const extensions = new Set(
    (options.extensions ?? defaultSourceExtensions).map((extension) => extension.replace(/^\./, '').toLowerCase()),
  );
  const excluded: ExcludedFile[] = [];
  const notSourceByExtension: Record<string, number> = {};
  const candidates: Candidate[] = [];

  const rootRules = newRules();
  const infoExclude = await readIgnoreFile(path.join(root, '.git', 'info', 'exclude'));
  if (infoExclude) rootRules.add(infoExclude);

  const walk = async (directory: string, relativeDirectory: string, scopes: IgnoreScope[]): Promise<void> => {
    const gitignore = await readIgnoreFile(path.join(directory, '.gitignore'));
    if (gitignore !== undefined) scopes = [...scopes, { base: relativeDirectory, rules: newRules().add(gitignore) }];
    let entries: Dirent[];
    try {
      entries = await fs.readdir(directory, { withFileTypes: true });
    } catch (error) {
      if (relativeDirectory === '') throw error; // the workspace itself must be readable
      excluded.push({ path: `${relativeDirectory}/`, reason: 'unreadable' });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const relativePath = relativeDirectory === '' ? entry.name : `${relativeDirectory}/${entry.name}`;
      const absolutePath = path.join(directory, entry.name);
      if (entry.isSymbolicLink()) {
        excluded.push({ path: relativePath, reason: 'symlink' }); // never followed: could leave the workspace or loop
        continue;
      }
      if (entry.isDirectory()) {
        const directoryReason = excludedDirectories.get(entry.name);
        if (directoryReason) excluded.push({ path: `${relativePath}/`, reason: directoryReason });
        else if (isGitIgnored(scopes, relativePath, true))
          excluded.push({ path: `${relativePath}/`, reason: 'gitignored' });
        else if (await isModelFolder(absolutePath)) excluded.push({ path: `${relativePath}/`, reason: 'model folder' });
        else await walk(absolutePath, relativePath, scopes);
        continue;
      }
      if (!entry.isFile()) continue; // sockets, fifos, devices
      const reason = reasonFromName(entry.name, relativePath, scopes, extensions, allowed?.ignores(relativePath));
      if (reason === 'not source') {
        const extension = extensionOf(entry.name);
        notSourceByExtension[extension] = (notSourceByExtension[extension] ?? 0) + 1;
      } else if (reason) {
        excluded.push({ path: relativePath, reason });
      } else {
        candidates.push({
          relativePath,
          absolutePath,
          extension: extensionOf(entry.name),
          allowed: Boolean(allowed?.ignores(relativePath)),
        });
      }
    }
  };
  await walk(root, '', [{ base: '', rules: rootRules }]);

  const files: CorpusFile[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < candidates.length) {
      const candidate = candidates[next++];
      const outcome = await readCandidate(candidate, maxFileBytes);
      if ('reason' in outcome) excluded.push(outcome);
      else files.push(outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(readConcurrency, candidates.length) }, worker));

  const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  files.sort(byPath);
  excluded.sort(byPath);
  return { root, files, excluded, notSourceByExtension };
}

/** JSON this large is data (fixtures, snapshots, vocabularies), not code anyone types. */
const maxJsonBytes = 64_000;

/** A trained model's folder (ours, or any Hugging Face layout with ONNX weights): its files are data, not code. */
async function isModelFolder(directory: string): Promise<boolean> {
  const exists = (name: string) =>
    fs.access(path.join(directory, name)).then(
      () => true,
      () => false,
    );
  return (await exists('modelwright.json')) || ((await exists('config.json')) && (await exists('onnx')));
}

/** The reason a file is excluded judging by its path alone, "not source", or undefined to read it. */
function reasonFromName(
  fileName: string,
  relativePath: string,
  scopes: IgnoreScope[],
  extensions: Set<string>,
  allowed = false,
): string | undefined {
  const lowerName = fileName.toLowerCase();
  if (isGitIgnored(scopes, relativePath, false)) return 'gitignored';
  if (allowed) return undefined;
  // A source file named like a secret (secrets.ts, credentials.py) is judged by its content.
  if (isSecretFileName(fileName) && !isCodeFile(fileName)) return secretFileNameReason;
  if (lockFileNames.has(lowerName) || /\.(lock|lockfile)$/.test(lowerName)) return 'lock file';
  if (/\.min\.\w+$/.test(lowerName) || /[.-]bundle\.js$/.test(lowerName)) return 'minified';
  if (generatedNamePatterns.some((pattern) => pattern.test(lowerName))) return 'generated';
  if (!extensions.has(extensionOf(fileName)) && !sourceFileNames.has(lowerName)) return 'not source';
  return undefined;
}

/** Reads one candidate and either returns it as a corpus file or the reason it is excluded. */
async function readCandidate(candidate: Candidate, maxFileBytes: number): Promise<CorpusFile | ExcludedFile> {
  const excludedAs = (reason: string): ExcludedFile => ({ path: candidate.relativePath, reason });
  let buffer: Buffer;
  try {
    const stat = await fs.stat(candidate.absolutePath);
    if (stat.size > maxFileBytes) return excludedAs('too large');
    buffer = await fs.readFile(candidate.absolutePath);
  } catch {
    return excludedAs('unreadable');
  }
  if (buffer.length > maxFileBytes) return excludedAs('too large'); // grew since stat
  const text = decodeText(buffer);
  if (text === undefined) return excludedAs('binary');
  if (candidate.allowed) return corpusFile(candidate, text, buffer);
  const secret = findSecretInContent(text);
  if (secret) return excludedAs(`secret content: ${secret}`);
  if (generatedHeaderPattern.test(text.slice(0, 2_000))) return excludedAs('generated');
  if (candidate.extension === 'json' && buffer.length > maxJsonBytes) return excludedAs('data file');
  if (isMinified(text, candidate.extension)) return excludedAs('minified');
  return corpusFile(candidate, text, buffer);
}

function corpusFile(candidate: Candidate, text: string, buffer: Buffer): CorpusFile {
  return {
    path: candidate.relativePath,
    text,
    bytes: buffer.length,
    sha256: createHash('sha256').update(buffer).digest('hex'),
  };
}

/** Throws, before anything is trained, when the workspace has no code to learn from. */
export function requireCode(corpus: Corpus): void {
  if (corpus.files.some((file) => isCodeFile(file.path))) return;
  const found = corpus.files.length ? `only ${corpus.files.length} prose or data files` : 'no source files';
  throw new Error(`no code to train on in ${corpus.root}: ${found} (${describeCorpus(corpus)})`);
}

/** One line for the progress output: what was read and what was left out, by reason. */
export function describeCorpus(corpus: Corpus): string {
  const byReason = new Map<string, number>();
  for (const entry of corpus.excluded) byReason.set(entry.reason, (byReason.get(entry.reason) ?? 0) + 1);
  const reasons = [...byReason].sort((a, b) => b[1] - a[1]).map(([reason, count]) => `${count} ${reason}`);
  const bytes = corpus.files.reduce((sum, file) => sum + file.bytes, 0);
  const notSource = Object.values(corpus.notSourceByExtension).reduce((sum, count) => sum + count, 0);
  const parts = [`${corpus.files.length} files (${(bytes / 1000).toFixed(0)} kB)`];
  if (reasons.length) parts.push(`excluded: ${reasons.join(', ')}`);
  if (notSource) parts.push(`${notSource} not source`);
  const judged = judgedExclusions(corpus);
  if (judged.length) {
    const shown = judged.slice(0, 5).map((entry) => `${entry.path} (${entry.reason})`);
    if (judged.length > shown.length) shown.push(`${judged.length - shown.length} more in the model card`);
    parts.push(`left out by judgement: ${shown.join(', ')}; --allow PATTERN keeps a file`);
  }
  return parts.join('; ');
}

/** The excluded files whose reason is a judgement that may be wrong, for the user to check (or allow). */
export function judgedExclusions(corpus: Corpus): ExcludedFile[] {
  return corpus.excluded.filter((entry) => /^(secret|minified|generated|data file)/.test(entry.reason));
}

export interface SplitOptions {
  /** Expected fraction of files held out for validation. Default 0.1. */
  validationFraction?: number;
  /** Changes which files are held out. Default 0. */
  seed?: number;
}

/** A number in [0, 1) decided by (seed, path) alone, so a file's side never depends on the other files. */
function splitPosition(seed: number, filePath: string): number {
  const digest = createHash('sha256').update(`${seed}\0${filePath}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * Splits files into train and validation by a hash of (seed, path): reproducible, and adding or removing a
 * file never moves another. There is always a train file, and with at least 2 files a validation file; only in
 * that fallback (no file hashed below the fraction, or all did) is the file nearest the threshold moved.
 */
export function splitByFile<T extends { path: string }>(
  files: readonly T[],
  options: SplitOptions = {},
): { train: T[]; validation: T[] } {
  const validationFraction = options.validationFraction ?? 0.1;
  const seed = options.seed ?? 0;
  const positions = files.map((file) => splitPosition(seed, file.path));
  const isValidation = positions.map((position) => position < validationFraction);
  const indices = positions.map((_, i) => i);
  if (files.length >= 2 && !isValidation.includes(true)) {
    isValidation[indices.reduce((best, i) => (positions[i] < positions[best] ? i : best))] = true;
  }
  if (files.length >= 1 && !isValidation.includes(false)) {
    isValidation[indices.reduce((best, i) => (positions[i] > positions[best] ? i : best))] = false;
  }
  return {
    train: files.filter((_, i) => !isValidation[i]),
    validation: files.filter((_, i) => isValidation[i]),
  };
}

export interface CorpusSnapshot {
  files: { path: string; sha256: string; bytes: number }[];
  excluded: ExcludedFile[];
  notSourceByExtension: Record<string, number>;
}

/** What the model card records about the data: every file with its hash, and every exclusion. */
export function corpusSnapshot(corpus: Corpus): CorpusSnapshot {
  return {
    files: corpus.files.map(({ path: filePath, sha256, bytes }) => ({ path: filePath, sha256, bytes })),
    excluded: corpus.excluded.map((entry) => ({ ...entry })),
    notSourceByExtension: { ...corpus.notSourceByExtension },
  };
}
