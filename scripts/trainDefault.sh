#!/usr/bin/env bash
# The recipe of the shipped default model (models/default): train the `default` preset from scratch on the
# permissively licensed TypeScript/JavaScript sources of the installed npm packages, evaluate it, and record
# the corpus licenses in its model card. STEPS sets the length (default 2000 steps of 16x256 tokens).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
sources=$(node scripts/defaultCorpus.mjs "$corpus/workspace")
out=${OUT:-models/default}
rm -rf "$out.next"
node bin/modelwright.js train --workspace "$corpus/workspace" --out "$out.next" --preset default --steps "${STEPS:-2000}" --seed 7
node -e '
  const fs = require("fs"); const file = process.argv[1] + "/modelwright.json";
  const card = JSON.parse(fs.readFileSync(file, "utf8"));
  card.name = "default";
  card.license = "MIT (weights); trained on sources under MIT, Apache-2.0, BSD and ISC licenses, listed in notes";
  card.notes = "Training corpus (npm packages): " + process.argv[2];
  card.data.workspace = "npm packages installed with Modelwright (see notes)";
  fs.writeFileSync(file, JSON.stringify(card, null, 2) + "\n");
' "$out.next" "$sources"
rm -rf "$out.next/checkpoint" "$out"
mv "$out.next" "$out"
du -sh "$out"
