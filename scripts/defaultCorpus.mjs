// Gathers the training corpus of the shipped default model: the TypeScript and JavaScript sources of pinned npm
// packages whose licenses allow it (MIT, Apache-2.0, BSD, ISC), fetched with `npm pack` into a cache folder.
// Copies them into the folder given as the first argument and prints the package list as JSON for the model card.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const target = path.resolve(process.argv[2] ?? 'default-corpus');
const cache = path.resolve(process.env.CORPUS_CACHE ?? '.cache/default-corpus');
/** Each package's source folders, chosen so that one copy of each source is taken (not its cjs/esm/d.ts builds). */
const packages = [
  ['@types/node@24.10.1', ['.']],
  ['typescript@5.9.3', ['lib']],
  ['type-fest@5.10.0', ['source']],
  ['protobufjs@8.8.1', ['src']],
  ['zod@4.6.7', ['src']],
  ['immer@11.2.13', ['src']],
  ['mobx@7.1.3', ['src']],
  ['redux@5.0.1', ['src']],
  ['@reduxjs/toolkit@2.15.0', ['src']],
  ['@tanstack/query-core@5.108.4', ['src']],
  ['@trpc/server@11.25.2', ['src']],
  ['effect@4.1.0', ['src']],
  ['three@0.187.0', ['src']],
  ['svelte@5.57.3', ['src']],
  ['preact@11.2.0', ['src']],
  ['luxon@3.7.2', ['src']],
  ['moment@2.31.0', ['src']],
  ['yjs@13.6.33', ['src']],
  ['prosemirror-model@1.25.13', ['src']],
  ['prosemirror-state@1.4.4', ['src']],
  ['prosemirror-view@1.44.0', ['src']],
  ['ramda@0.32.0', ['src']],
  ['chalk@5.6.2', ['source']],
  ['ajv@8.20.0', ['lib']],
  ['axios@1.21.1', ['lib']],
  ['commander@14.0.3', ['lib', 'typings']],
  ['express@5.3.0', ['lib']],
  ['koa@3.3.0', ['lib']],
  ['fastify@5.12.8', ['lib', 'types']],
  ['ws@8.23.0', ['lib']],
  ['undici@7.30.2', ['lib']],
  ['eslint@10.15.0', ['lib']],
  ['webpack@5.113.0', ['lib']],
  ['mongoose@9.12.1', ['lib']],
  ['knex@3.3.0', ['lib']],
  ['jsdom@29.1.1', ['lib']],
  ['fp-ts@2.16.11', ['src', 'lib']],
  ['io-ts@2.2.22', ['src', 'lib']],
  ['mathjs@15.2.0', ['lib/esm']],
  ['semver@7.8.6', ['classes', 'functions', 'ranges', 'internal']],
];
/** No package may take more than this many bytes, so that a few large ones do not crowd out the rest. */
const packageBudget = 3_000_000;
const permissive = /^(MIT|ISC|Apache-2\.0|BSD-2-Clause|BSD-3-Clause|0BSD)$/;
const sourceFile = /\.(ts|mts|cts|js|mjs|cjs)$/;
const skipped = /(\.min\.js$|\.map$|(^|\/)(test|tests|__tests__|node_modules)\/|\.(test|spec)\.)/;

fs.rmSync(target, { recursive: true, force: true });
fs.mkdirSync(cache, { recursive: true });
const seen = new Set();
const used = [];
for (const [spec, dirs] of packages) {
  const root = unpacked(spec);
  const meta = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const alternatives = String(meta.license).replace(/[()]/g, '').split(' OR ');
  if (!alternatives.some((l) => permissive.test(l.trim())))
    throw new Error(`${spec}: license ${meta.license} is not on the allow-list`);
  let files = 0;
  let bytes = 0;
  for (const source of sources(root, dirs)) {
    const text = fs.readFileSync(source);
    const hash = crypto.createHash('sha256').update(text).digest('hex');
    if (seen.has(hash) || bytes + text.length > packageBudget) continue;
    seen.add(hash);
    const destination = path.join(target, meta.name.replace('/', '__'), path.relative(root, source));
    fs.mkdirSync(path.dirname(destination), { recursive: true });
    files += writeInParts(destination, text.toString('utf8'));
    bytes += text.length;
  }
  used.push({ package: meta.name, version: meta.version, license: meta.license, files, bytes });
}
console.log(JSON.stringify(used));

/** The package's unpacked folder in the cache, fetched with `npm pack` the first time. */
function unpacked(spec) {
  const folder = path.join(cache, spec.replace('/', '__'));
  const root = () => path.join(folder, fs.readdirSync(folder)[0]); // `package`, or `node` for @types/node
  if (fs.existsSync(folder) && fs.readdirSync(folder).length === 1) return root();
  fs.rmSync(folder, { recursive: true, force: true });
  fs.mkdirSync(folder, { recursive: true });
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', spec, '--json', '--pack-destination', folder], { encoding: 'utf8' }),
  );
  execFileSync('tar', ['xzf', path.join(folder, packed.filename), '-C', folder]);
  fs.rmSync(path.join(folder, packed.filename));
  return root();
}

/** The package's source files under the given folders, in a stable order. */
function sources(root, dirs) {
  const found = [];
  for (const dir of dirs) {
    const from = path.join(root, dir);
    if (!fs.existsSync(from)) continue;
    const entries = fs.readdirSync(from, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isFile() || !sourceFile.test(entry.name)) continue;
      const file = path.join(entry.parentPath ?? entry.path, entry.name);
      if (!skipped.test(path.relative(root, file).split(path.sep).join('/'))) found.push(file);
    }
  }
  return found.sort();
}

/** Writes a text, split at line ends into numbered parts when above the corpus walker's 1 MB limit. */
function writeInParts(destination, text) {
  const limit = 900_000;
  if (text.length <= limit) {
    fs.writeFileSync(destination, text);
    return 1;
  }
  const extension = path.extname(destination);
  let part = 0;
  let chunk = [];
  let size = 0;
  const flush = () => {
    fs.writeFileSync(`${destination.slice(0, -extension.length)}.part${++part}${extension}`, chunk.join('\n'));
    chunk = [];
    size = 0;
  };
  for (const line of text.split('\n')) {
    if (size + line.length > limit && chunk.length) flush();
    chunk.push(line);
    size += line.length + 1;
  }
  if (chunk.length) flush();
  return part;
}
