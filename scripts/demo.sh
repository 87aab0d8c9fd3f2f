#!/usr/bin/env bash
# The main job, offline: complete a sample file with the shipped default model, then train a small model on
# this repository's own sources with a short budget, evaluate it, and show its completions.
set -euo pipefail
cd "$(dirname "$0")/.."
mw() { node bin/modelwright.js "$@"; }
out=${DEMO_DIR:-.tmp/demo}
mkdir -p "$out"
sample='export function clamp(value: number, low: number, high: number): number {
  '

echo "== 1. completion from the shipped default model (models/default)"
mw complete --model models/default --prompt "$sample" --max-tokens 48 --greedy
echo
echo "== 2. training a tiny model on this repository's sources (${MINUTES:-3} minutes)"
mw train --workspace . --out "$out/workspace-model" --preset tiny --minutes "${MINUTES:-3}"
echo
echo "== 3. evaluating it on its held-out files"
mw eval "$out/workspace-model" --workspace . --samples 40
echo
echo "== 4. its completion of the same prompt"
mw complete --model "$out/workspace-model" --prompt "$sample" --max-tokens 48 --greedy
