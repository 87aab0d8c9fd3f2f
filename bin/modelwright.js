#!/usr/bin/env node
// The `modelwright` command: runs the bundled CLI (build it first with `npm run build`).
require('../server/out/cli.js')
  .main(process.argv.slice(2))
  .then((code) => process.exit(code));
