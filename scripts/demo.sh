#!/usr/bin/env bash
# The main job, offline, in a few minutes: fine-tune the shipped default model on this repository's own sources
# for a short time budget, then score it against the model it started from and a no-model baseline on the same
# held-out files (a table, with completions next to the real lines), and complete a sample with both.
set -euo pipefail
cd "$(dirname "$0")/.."
mw() { node bin/modelwright.js "$@"; }
out=${DEMO_DIR:-.tmp/demo}
minutes=${MINUTES:-2}
mkdir -p "$out"
export MODELWRIGHT_DATA_DIR="$out/data" # evaluations of the shipped model are recorded here, not in its folder
sample='export function clamp(value: number, low: number, high: number): number {
  '

echo "== 1. fine-tuning the shipped model (models/default) on this repository's sources for $minutes minutes"
mw train --workspace . --out "$out/repo-model" --base models/default --minutes "$minutes" --force
echo
echo "== 2. the fine-tuned model, the model it started from and a baseline, on the same held-out files"
mw eval "$out/repo-model" models/default --workspace . --samples 40 --examples 4
echo
echo "== 3. completing a sample (the editor's pipeline: stop rules and filters)"
for model in models/default "$out/repo-model"; do
  echo "-- $model"
  mw complete --model "$model" --prompt "$sample" --greedy
done
