#!/usr/bin/env bash
# Two aepsl jobs sharing the cores: the wall time of one training job alone, and of each of
# two identical jobs started together, for several libgomp waiting policies.
#
#   scripts/contention.sh OUT [AEPSL] [SETTING ...]
#
# A SETTING is what the jobs get in their environment: "GOMP_SPINCOUNT=300000" (libgomp's
# own default when neither variable is set: about 3 ms of spinning), "OMP_WAIT_POLICY=passive",
# or "default" (no variable: aepsl chooses, ComputeThreads.chooseWaitPolicy). The job is a
# tiny erase step of THREADS threads (default: all cores) on a synthetic set: every job does
# the same work. Prints one line a setting: alone s, together s (each), slowdown.
set -euo pipefail
out=${1:?output directory}
aepsl=${2:-$(dirname "$0")/../.build-test/release/aepsl}
shift $(( $# >= 2 ? 2 : 1 ))
settings=("$@")
[[ ${#settings[@]} -gt 0 ]] || settings=(GOMP_SPINCOUNT=300000 default OMP_WAIT_POLICY=passive)
threads=${THREADS:-$(nproc)}
epochs=${EPOCHS:-6}
mkdir -p "$out"
data="$out/data"
[[ -d $data/JPEGImages ]] || "$aepsl" synth "$data" --train 96 --val 4 --size 96 --seed 4 > /dev/null

job() {  # job SETTING NAME: runs one erase, prints its wall seconds
  local setting=$1 name=$2 start end
  rm -rf "$out/$name"
  start=$(date +%s.%N)
  if [[ $setting == default ]]; then
    env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$aepsl" erase --dataset "$data" --run "$out/$name" --max-steps 1 \
      --epochs "$epochs" --batch-size 16 --crop-size 96 --threads "$threads" --quiet > "$out/$name.log" 2>&1
  else
    env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$setting" "$aepsl" erase --dataset "$data" --run "$out/$name" --max-steps 1 \
      --epochs "$epochs" --batch-size 16 --crop-size 96 --threads "$threads" --quiet > "$out/$name.log" 2>&1
  fi
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $threads threads a job on $(nproc) cores; $epochs epochs of 96 images"
printf "%-24s %8s %18s %10s\n" setting alone_s "together_s (a, b)" slowdown
for s in "${settings[@]}"; do
  alone=$(job "$s" alone)
  ta=$out/a.time tb=$out/b.time
  (job "$s" a > "$ta") &
  (job "$s" b > "$tb") &
  wait
  a=$(cat "$ta") b=$(cat "$tb")
  slow=$(echo "scale=2; ($a + $b) / 2 / $alone" | bc)
  printf "%-24s %8.1f %8.1f, %8.1f %9sx\n" "$s" "$alone" "$a" "$b" "$slow"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
