#!/usr/bin/env bash
# Long runs stay flat: runs one long aepsl job and records its resident memory (VmRSS of
# /proc/PID/status) and open file descriptors (/proc/PID/fd) once a second.
#
#   scripts/soak.sh tiny|largefov|predict OUT [AEPSL]
#
#   tiny      erase, one step of tiny: 3,200 training steps (200 images, batch 8, 64-pixel crops)
#   largefov  erase, one step of largefov: 400 training steps (batch 2, 96-pixel crops)
#   predict   predict 2,000 images with the dense CRF (a tiny segmenter trained first)
#
# Writes OUT/<job>.csv (seconds, rss_kib, fds) and prints the summary of
# scripts/soak_summary.py (growth after warm-up). Each job takes a few minutes on two cores;
# run it under the machine's lock when the machine is shared. AEPSL: the binary (default
# .build-test/release/aepsl, what `make test` builds).
set -euo pipefail
job=${1:?tiny|largefov|predict}
out=${2:?output directory}
aepsl=${3:-$(dirname "$0")/../.build-test/release/aepsl}
mkdir -p "$out"
data="$out/data"
threads=${THREADS:-2}

# Samples PID until it exits: seconds since start, VmRSS in KiB, open descriptors.
sample() {
  local pid=$1 csv=$2 start
  start=$(date +%s.%N)
  echo "seconds,rss_kib,fds" > "$csv"
  while [[ -r /proc/$pid/status ]]; do
    local rss fds now
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    now=$(date +%s.%N)
    [[ -n $rss ]] && echo "$(echo "$now - $start" | bc),$rss,$fds" >> "$csv"
    sleep 1
  done
}

# Runs a command in the background and samples it; fails when the command fails.
soak() {
  local name=$1
  shift
  "$@" > "$out/$name.log" 2>&1 &
  local pid=$!
  sample "$pid" "$out/$name.csv"
  wait "$pid" || { echo "soak: $name failed, see $out/$name.log" >&2; tail -5 "$out/$name.log" >&2; exit 1; }
}

[[ -d $data/JPEGImages ]] || "$aepsl" synth "$data" --train 200 --val 2000 --size 96 --seed 18 > /dev/null

case $job in
  tiny)
    rm -rf "$out/run-tiny"
    soak tiny "$aepsl" erase --dataset "$data" --run "$out/run-tiny" --net tiny --max-steps 1 --epochs 128 \
      --batch-size 8 --crop-size 64 --threads "$threads" --quiet
    ;;
  largefov)
    rm -rf "$out/run-largefov"
    soak largefov "$aepsl" erase --dataset "$data" --run "$out/run-largefov" --net largefov --max-steps 1 --epochs 4 \
      --batch-size 2 --crop-size 96 --threads "$threads" --quiet
    ;;
  predict)
    run="$out/run-predict"
    if [[ ! -f $run/seg/psl/segmenter.safetensors ]]; then
      "$aepsl" erase --dataset "$data" --run "$run" --max-steps 1 --epochs 2 --batch-size 16 --crop-size 64 \
        --threads "$threads" --quiet > /dev/null
      "$aepsl" masks --run "$run" --quiet > /dev/null
      "$aepsl" train-seg --run "$run" --dataset "$data" --epochs 2 --batch-size 16 --crop-size 64 \
        --threads "$threads" --quiet > /dev/null
    fi
    rm -rf "$out/predict-out"
    soak predict "$aepsl" predict --checkpoint "$run/seg/psl/segmenter.safetensors" --dataset "$data" --split val \
      --out "$out/predict-out" --crf on --threads "$threads" --quiet
    ;;
  *) echo "soak.sh: unknown job '$job' (tiny, largefov, predict)" >&2; exit 2 ;;
esac
python3 "$(dirname "$0")/soak_summary.py" "$out/$job.csv"
