#!/usr/bin/env bash
# Installs the tools of the end-to-end test in a real VS Code (code-server 4.100.3 and Debian's Chromium) into a
# cached tool folder outside the package's own dependencies; prints the code-server executable path on stdout.
set -euo pipefail

version=4.100.3
tools="${MODELWRIGHT_TEST_TOOLS:-$HOME/.cache/modelwright-test-tools}"
prefix="$tools/code-server-$version"
bin="$prefix/node_modules/.bin/code-server"
log() { echo "[codeServer.install] $*" >&2; }

# Debian packages: Chromium to drive, the headers code-server's native modules build against, ripgrep for search.
missing=()
for p in chromium ripgrep libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi

if [ ! -x "$bin" ]; then
  log "installing code-server@$version into $prefix (about 2 minutes)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # @vscode/ripgrep downloads its binary from GitHub: pre-fill its cache with Debian's rg, packed as it expects.
  cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
  mkdir -p "$cache" "$work/rg"
  cp "$(command -v rg)" "$work/rg/rg"
  tar -C "$work/rg" -czf "$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" rg
  rm -rf "$prefix.partial"
  mkdir -p "$prefix.partial"
  echo '{"name":"modelwright-test-tools","private":true}' > "$prefix.partial/package.json"
  # node-pty's postinstall runs `npx node-gyp`: an npmrc with yes=false would cancel it.
  (cd "$prefix.partial" && npm_config_yes=true npm install --no-save --no-audit --no-fund --unsafe-perm \
     --foreground-scripts "code-server@$version" >"$work/npm.log" 2>&1) || { tail -40 "$work/npm.log" >&2; exit 1; }
  rm -rf "$prefix"
  mv "$prefix.partial" "$prefix"
fi
echo "$bin"
