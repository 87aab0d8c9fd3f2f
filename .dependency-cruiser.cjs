// The layering of the code (docs/architecture.md): a folder may import only the folders of lower layers, and
// the few same-layer neighbours listed below. `npm run lint` fails on any import against the direction.
const layers = [
  ['util', 'protocol'],
  ['engine', 'tokenizer', 'workspace'],
  ['modelFolder'],
  ['runtime'],
  ['train', 'convert'],
  ['eval', 'classify'],
  ['registry', 'hub'],
  ['completion', 'context', 'explanation', 'serve', 'deploy', 'workers'],
  ['features', 'cli'],
  ['server'],
  ['main'],
];
/** Same-layer imports that are part of the design. */
/** @type {Record<string, string[]>} */
const neighbours = { deploy: ['serve'], completion: ['context'], context: ['explanation'] };

const folderPattern = (name) =>
  ({ protocol: 'protocol\\.ts$', server: 'server\\.ts$', main: 'cli\\.ts$' })[name] ?? `${name}/`;
const under = (names) => `^server/src/(${names.map(folderPattern).join('|')})`;

const layerRules = layers.flatMap((layer, rank) =>
  layer.map((name) => ({
    name: `layer-${name}`,
    comment: `${name} may import only lower layers${neighbours[name] ? ` and ${neighbours[name].join(', ')}` : ''}`,
    severity: 'error',
    from: { path: under([name]) },
    to: {
      path: '^server/src/',
      pathNot: under([name, ...layers.slice(0, rank).flat(), ...(neighbours[name] ?? [])]),
    },
  })),
);

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'native-runtime-only-in-runtime',
      comment: 'Only server/src/runtime/ loads onnxruntime-node and @huggingface/transformers',
      severity: 'error',
      from: { path: '^(server|client)/', pathNot: '^server/src/runtime/' },
      to: { path: 'node_modules/(onnxruntime-node|@huggingface/transformers)/' },
    },
    {
      name: 'client-sees-only-the-protocol',
      comment: 'The extension shares exactly one file with the server: server/src/protocol.ts',
      severity: 'error',
      from: { path: '^client/' },
      to: { path: '^server/', pathNot: '^server/src/protocol\\.ts$' },
    },
    {
      name: 'server-never-imports-the-client',
      severity: 'error',
      from: { path: '^server/' },
      to: { path: '^client/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)out/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
