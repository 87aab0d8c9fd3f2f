// Bundles the CLI, the language server and the extension with esbuild. Native and heavy packages stay
// external and load from node_modules at run time; `vscode` is provided by the editor.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';

const external = ['vscode', 'onnxruntime-node', '@huggingface/transformers', 'sharp'];
const entries = [
  { in: 'server/src/cli.ts', out: 'server/out/cli.js' },
  { in: 'server/src/server.ts', out: 'server/out/server.js' },
  { in: 'client/src/extension.ts', out: 'client/out/extension.js' },
].filter((e) => fs.existsSync(e.in));

await Promise.all(
  entries.map((e) =>
    esbuild.build({
      entryPoints: [e.in],
      outfile: e.out,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: true,
      external,
      logLevel: 'warning',
    }),
  ),
);
