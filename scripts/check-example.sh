#!/usr/bin/env bash
# Builds Examples/LabelImage (a package that depends on aepsl by path, as a user's would) and
# runs it on a real segmenter: a tiny network trained for eight epochs (about 10 s) on 32
# synthetic images, enough to label objects, not only background. Its label map of a photo must be the one `aepsl predict --crf on` writes for the
# same checkpoint and photo, byte for byte.
# Usage: scripts/check-example.sh [AEPSL_BINARY]   (default: .build-test/release/aepsl)
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
aepsl=${1:-.build-test/release/aepsl}
[ -x "$aepsl" ] || { echo "check-example: no aepsl binary at $aepsl; build it first (make test builds it)" >&2; exit 1; }

# Its own scratch path: the tests' build uses the MPI trait and -enable-testing, which the
# example's dependency graph does not, so sharing .build-test would rebuild both each time.
$SWIFT build -c release --package-path Examples/LabelImage --scratch-path .build-example
example=.build-example/release/label-image

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$aepsl" synth "$work/data" --train 32 --val 2 --size 128 --threads 1 >/dev/null
"$aepsl" train-seg --run "$work/run" --dataset "$work/data" --supervision full --epochs 8 --threads 1 --quiet >/dev/null
# Globs, not `ls | head`: with pipefail, ls killed by SIGPIPE would fail the script.
checkpoints=("$work"/run/seg/*/segmenter.safetensors)
checkpoint=${checkpoints[0]}
photos=("$work"/data/JPEGImages/*.jpg)
photo=${photos[0]}
mkdir -p "$work/photo"
cp "$photo" "$work/photo/"
"$aepsl" predict --checkpoint "$checkpoint" --images "$work/photo" --out "$work/predict" --crf on --threads 1 --quiet >/dev/null
"$example" "$checkpoint" "$photo" "$work/example.png" | tee "$work/example.txt"
id=$(basename "$photo" .jpg)
cmp "$work/predict/$id.png" "$work/example.png"
# A map of background alone would make the comparison say little.
[ "$(wc -l < "$work/example.txt")" -ge 2 ] || { echo "check-example: the segmenter labelled only one class" >&2; exit 1; }
echo "check-example: Examples/LabelImage labels $(basename "$photo") as aepsl predict does"
