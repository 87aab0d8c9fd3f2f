// Gathers the training corpus of the shipped default model: the TypeScript and JavaScript sources of npm
// packages installed with this project whose licenses allow it (MIT, Apache-2.0, BSD, ISC). Copies them into
// the folder given as the first argument and prints the package list with licenses as JSON for the model card.
import * as fs from 'node:fs';
import * as path from 'node:path';

const target = path.resolve(process.argv[2] ?? 'default-corpus');
const packages = [
  { name: '@types/node', dirs: ['.'] },
  { name: 'typescript', dirs: ['lib'] },
  { name: 'onnxruntime-common', dirs: ['lib'] },
  { name: 'onnxruntime-node', dirs: ['lib'] },
  { name: 'protobufjs', dirs: ['src', 'ext', 'cli'] },
  { name: '@huggingface/transformers', dirs: ['src'] },
  { name: '@huggingface/jinja', dirs: ['src', 'dist'] },
  { name: 'ignore', dirs: ['.'] },
  { name: 'long', dirs: ['.'] },
  { name: 'semver', dirs: ['.'] },
  { name: 'flatbuffers', dirs: ['ts', 'js', 'mjs'] },
  { name: 'undici-types', dirs: ['.'] },
  { name: 'type-fest', dirs: ['source'] },
];
const permissive = /^(MIT|ISC|Apache-2\.0|BSD-2-Clause|BSD-3-Clause|0BSD)$/;
const sourceFile = /\.(ts|mts|cts|js|mjs|cjs)$/;

fs.rmSync(target, { recursive: true, force: true });
const used = [];
for (const p of packages) {
  const root = path.resolve('node_modules', p.name);
  if (!fs.existsSync(root)) continue;
  const meta = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const alternatives = String(meta.license).replace(/[()]/g, '').split(' OR ');
  if (!alternatives.some((l) => permissive.test(l.trim())))
    throw new Error(`${p.name}: license ${meta.license} is not on the allow-list`);
  let files = 0;
  for (const dir of p.dirs) {
    const from = path.join(root, dir);
    if (!fs.existsSync(from)) continue;
    for (const entry of fs.readdirSync(from, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !sourceFile.test(entry.name)) continue;
      const source = path.join(entry.parentPath ?? entry.path, entry.name);
      const relative = path.relative(root, source);
      if (relative.split(path.sep).includes('node_modules')) continue;
      const destination = path.join(target, p.name.replace('/', '__'), relative);
      fs.mkdirSync(path.dirname(destination), { recursive: true });
      files += copyInParts(source, destination);
    }
  }
  used.push({ package: p.name, version: meta.version, license: meta.license, files });
}
console.log(JSON.stringify(used));

/** Copies a file, splitting one above the corpus walker's 1 MB limit at line ends into numbered parts. */
function copyInParts(source, destination) {
  const limit = 900_000;
  if (fs.statSync(source).size <= limit) {
    fs.copyFileSync(source, destination);
    return 1;
  }
  const lines = fs.readFileSync(source, 'utf8').split('\n');
  const extension = path.extname(destination);
  let part = 0;
  let chunk = [];
  let size = 0;
  const flush = () => {
    fs.writeFileSync(destination.slice(0, -extension.length) + `.part${++part}` + extension, chunk.join('\n'));
    chunk = [];
    size = 0;
  };
  for (const line of lines) {
    if (size + line.length > limit && chunk.length) flush();
    chunk.push(line);
    size += line.length + 1;
  }
  if (chunk.length) flush();
  return part;
}
