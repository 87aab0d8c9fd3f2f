#!/usr/bin/env bash
# The recipe of the shipped default model (models/default): train the `default` preset from scratch, with
# fill-in-the-middle, on the permissively licensed sources of pinned npm packages (scripts/defaultCorpus.mjs),
# and record the packages and their licenses in its model card. STEPS sets the length (default 9000 steps of
# 16x256 tokens, about 19 tokens per parameter). Run it again after an interruption: it resumes from the
# checkpoint in models/default.next. The finished model replaces models/default.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-models/default}
corpus=.cache/default-corpus/workspace
if [ -f "$out.next/checkpoint/state.safetensors" ]; then
  echo "resuming the run in $out.next"
  node bin/modelwright.js train --workspace "$corpus" --out "$out.next" --resume
else
  mkdir -p .cache/default-corpus
  node scripts/defaultCorpus.mjs "$corpus" > .cache/default-corpus/packages.json
  rm -rf "$out.next"
  node bin/modelwright.js train --workspace "$corpus" --out "$out.next" --preset default --steps "${STEPS:-9000}" \
    --fim-rate 0.5 --seed 7
fi
node -e '
  const fs = require("fs"); const file = process.argv[1] + "/modelwright.json";
  const card = JSON.parse(fs.readFileSync(file, "utf8"));
  const packages = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  card.name = "default";
  card.license = "MIT (weights); trained on sources under MIT, Apache-2.0, BSD and ISC licenses, listed in notes";
  card.notes = "Training corpus (npm packages fetched with npm pack): " +
    packages.map((p) => `${p.package}@${p.version} (${p.license}, ${p.files} files)`).join(", ");
  card.data.workspace = "npm packages (see notes)";
  fs.writeFileSync(file, JSON.stringify(card, null, 2) + "\n");
' "$out.next" .cache/default-corpus/packages.json
rm -rf "$out.next/checkpoint"
if [ -n "${KEEP_OLD:-}" ]; then echo "new model left in $out.next"; exit 0; fi
rm -rf "$out"
mv "$out.next" "$out"
du -sh "$out"
