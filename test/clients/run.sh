#!/usr/bin/env bash
# The real-client tests (`npm run test:clients`): builds, then runs every test/clients/*.e2e.ts with node's test
# runner (each installs what it needs: Neovim with apt-get, code-server into a tool cache); ends with the pass/fail
# counts and a non-zero exit on failure. CLIENT_TESTS=PATTERN runs a subset, SKIP_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
if [ "${SKIP_BUILD:-}" != 1 ]; then npm run --silent build; fi
shopt -s nullglob
tests=(test/clients/*${CLIENT_TESTS:-}*.e2e.ts)
if ((${#tests[@]} == 0)); then
  echo "no client tests match '${CLIENT_TESTS:-}'" >&2
  exit 1
fi
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${tests[@]}"
