// Bundles the CLI, the language server, the extension and its webview scripts with esbuild. Native and heavy
// packages stay external and load from node_modules at run time; `vscode` is provided by the editor. Webview
// scripts run in the browser and carry everything they import (chart.js included).
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';

const external = ['vscode', 'onnxruntime-node', '@huggingface/transformers', 'sharp'];
const entries = [
  { in: 'server/src/cli.ts', out: 'server/out/cli.js' },
  { in: 'server/src/server.ts', out: 'server/out/server.js' },
  { in: 'server/src/workers/trainingWorker.ts', out: 'server/out/trainingWorker.js' },
  { in: 'server/src/runtime/inferenceWorker.ts', out: 'server/out/inferenceWorker.js' },
  { in: 'client/src/extension.ts', out: 'client/out/extension.js' },
].filter((e) => fs.existsSync(e.in));
const webviewEntries = [{ in: 'client/webview/training.ts', out: 'client/out/webview/training.js' }];

await Promise.all([
  ...entries.map((e) =>
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
  ...webviewEntries.map((e) =>
    esbuild.build({
      entryPoints: [e.in],
      outfile: e.out,
      bundle: true,
      platform: 'browser',
      target: 'es2022',
      format: 'iife',
      minify: true,
      sourcemap: false,
      logLevel: 'warning',
    }),
  ),
]);
