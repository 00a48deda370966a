#!/usr/bin/env bash
# The generalization suite (issue 13): datasets that differ from the demo in image size and
# aspect, object scale, classes, images and objects per image. For each member, one at a
# time: `aepsl synth` with the member's options, `aepsl run` with the DEFAULTS (or --config),
# which predicts and scores every segmenter on the TEST split too (RUN/metrics/test-*.json),
# and one markdown table of every member.
#
#   scripts/suite.sh [--quick | --full | --members a,b,...] [--out DIR] [--bin AEPSL]
#                    [--config FILE] [--threads N] [--list]
#
# --quick (default) runs the members marked quick, few200 and side256: about an hour on two
# idle cores (estimated), since each member trains three segmenters of at least 1,800
# updates (7-8 minutes each at two threads on 128-px crops). --full runs every member: about
# nine hours without many3000 (estimated from the stages' one-thread times in RESULTS.md,
# "The suite with the current defaults"; the two 20-class members are half of it).
# --threads goes to aepsl synth and aepsl run (default: theirs). Each heavy command is
# prefixed with $SUITE_WRAP when it is set (e.g. a wrapper that takes a shared lock; `aepsl run` resumes
# where an interrupted one stopped). $SUITE_EXTRA adds a member,
# "name|tier|axis|synth options" (e.g. a tiny one to try the script).
# Columns: CAM-only and AE masks are train mIoU (the pseudo masks, scored on the training
# split); PSL, PSL+ and the fully supervised bound are test mIoU (with the dense CRF), and
# PSL+ also on val (the split defaults were chosen on); weak/full is PSL+ over the bound on test.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${AEPSL:-$root/.build/release/aepsl}"
out="$root/suite-runs"
tier=quick
members=""
config=""
list=0
threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) tier=quick ;;
    --full) tier=full ;;
    --members) members="$2"; shift ;;
    --out) out="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    --config) config="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --list) list=1 ;;
    -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0"; exit 0 ;;
    *) echo "suite.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# name | tier | axis | synth options (train/val/test counts included)
suite=(
  "demo|full|the demo: 128x128, 6 classes, 800 images, 1-3 objects|--train 800 --val 200 --test 200"
  "few200|quick|images: 200 training images|--train 200 --val 100 --test 100 --seed 1"
  "side256|quick|size: 256x256|--train 400 --val 100 --test 100 --size 256 --seed 2"
  "wide320|full|aspect: 320x240, 12 classes|--train 600 --val 150 --test 150 --width 320 --height 240 --classes 12 --seed 3"
  "tiny-objects|full|scale: objects of 3-10% of 256x256|--train 400 --val 100 --test 100 --size 256 --object-scale 0.03-0.1 --seed 4"
  "large-objects|full|scale: objects of 20-60%, 1-2 per image|--train 400 --val 100 --test 100 --object-scale 0.2-0.6 --objects 1-2 --seed 5"
  "crowd20|full|classes 20, 1-5 objects of 3-25%, 160x160|--train 800 --val 150 --test 150 --size 160 --classes 20 --objects 1-5 --object-scale 0.03-0.25 --seed 6"
  "many3000|full|images: 3000 training images, 12 classes|--train 3000 --val 300 --test 300 --classes 12 --seed 7"
  "voc500|full|size 500x375, 20 classes, 1-4 objects of 5-60%|--train 800 --val 150 --test 150 --width 500 --height 375 --classes 20 --objects 1-4 --object-scale 0.05-0.6 --seed 8"
)
[ -n "${SUITE_EXTRA:-}" ] && suite+=("$SUITE_EXTRA")

if [ "$list" = 1 ]; then
  for m in "${suite[@]}"; do IFS='|' read -r name t axis opts <<<"$m"; echo "$name ($t): $axis: $opts"; done
  exit 0
fi
[ -x "$bin" ] || { echo "suite.sh: no aepsl binary at $bin; build it (swift build -c release) or pass --bin" >&2; exit 1; }
mkdir -p "$out"
wrap=(${SUITE_WRAP:-})

# mIoU (percent) from a metrics JSON, or a dash.
miou() { python3 -c 'import json,sys; print("%.2f" % (100*json.load(open(sys.argv[1]))["meanIoU"]))' "$1" 2>/dev/null || echo "-"; }

table="$out/suite.md"
{
  echo "| member | axis | CAM-only (train) | AE masks (train) | PSL (test) | PSL+ (val) | PSL+ (test) | full (test) | weak/full (test) | AE-CAM | time |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$table.tmp"
for m in "${suite[@]}"; do
  IFS='|' read -r name t axis opts <<<"$m"
  if [ -n "$members" ]; then
    case ",$members," in *",$name,"*) ;; *) continue ;; esac
  elif [ "$tier" = quick ] && [ "$t" != quick ]; then
    continue
  fi
  dir="$out/$name"
  mkdir -p "$dir"
  echo "== $name: $axis"
  start=$(date +%s)
  synthargs=(synth "$dir/data" --threads "${threads:-2}")
  # shellcheck disable=SC2206
  synthargs+=($opts)
  "${wrap[@]}" "$bin" "${synthargs[@]}" > "$dir/synth.log"
  runargs=(run --dataset "$dir/data" --run "$dir/run" --quiet)
  [ -n "$config" ] && runargs+=(--config "$config")
  [ -n "$threads" ] && runargs+=(--threads "$threads")
  "${wrap[@]}" "$bin" "${runargs[@]}" > "$dir/run.log" 2>&1 || { echo "   run failed: see $dir/run.log"; tail -3 "$dir/run.log"; continue; }
  seconds=$(( $(date +%s) - start ))
  [ -f "$dir/seconds" ] && seconds=$(cat "$dir/seconds") || echo "$seconds" > "$dir/seconds"
  metrics="$dir/run/metrics"
  cam=$(miou "$metrics/cam.json"); ae=$(miou "$metrics/ae-masks.json")
  psl=$(miou "$metrics/test-psl.json"); plusval=$(miou "$metrics/psl-plus.json")
  plus=$(miou "$metrics/test-psl-plus.json"); full=$(miou "$metrics/test-full.json")
  ratio=$(python3 -c 'import sys
try: print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print("-")' "$plus" "$full")
  gain=$(python3 -c 'import sys
try: print("%+.1f" % (float(sys.argv[1]) - float(sys.argv[2])))
except Exception: print("-")' "$ae" "$cam")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d min |\n' "$name" "$axis" "$cam" "$ae" "$psl" "$plusval" \
    "$plus" "$full" "$ratio" "$gain" $(( (seconds + 30) / 60 )) >> "$table.tmp"
  tail -1 "$table.tmp"
done
mv "$table.tmp" "$table"
echo "Table: $table"
cat "$table"
