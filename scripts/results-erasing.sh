#!/usr/bin/env bash
# Reproduces RESULTS.md's adversarial-erasing tables on the embedded synthetic dataset:
# CAM-only masks against the masks merged over 1..N erasing steps, and the background-threshold
# sweep. Usage: scripts/results-erasing.sh [OUT_DIR] [extra `aepsl erase` options...]
# Takes about 10 minutes on two idle cores (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/results-erasing}
shift || true
swift build -c release --product aepsl >/dev/null
aepsl=.build/release/aepsl

[ -f "$out/synth/synth.json" ] || "$aepsl" synth "$out/synth" >/dev/null
# Every step is kept (--stop-ratio 1000) so that each one can be scored; the manifest still
# records the final losses the default stopping rule decides on.
"$aepsl" erase --dataset "$out/synth" --run "$out/run" --max-steps 4 --stop-ratio 1000 --quiet "$@"

score() { "$aepsl" eval --pred "$1" --dataset "$out/synth" --split train --quiet --json "$1.json" | head -1; }
echo "final losses per step (epoch,loss):"
for f in "$out"/run/erase/step-*/loss.csv; do echo "  $f: $(tail -1 "$f")"; done
for bg in 0.06 0.2 0.4 0.6; do
  for n in 1 2 3 4; do
    [ -f "$out/run/erase/step-$n/manifest.json" ] || continue
    dir="$out/run/masks-steps$n-bg$bg"
    "$aepsl" masks --run "$out/run" --steps "$n" --background-threshold "$bg" --out "$dir" --quiet >/dev/null
    echo "background < $bg, steps 1-$n: $(score "$dir")"
  done
done
