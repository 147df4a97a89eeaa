#!/usr/bin/env bash
# Times `wanlora curate` on a 200,000-row metadata-only demo manifest (no media files), with the
# release build. Prints each run's wall time and the median. Usage: bench/curate_200k.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
work=${BENCH_DIR:-/tmp/wanlora-bench-curate}
swift build -c release --product wanlora >/dev/null
bin=.build/release/wanlora
mkdir -p "$work"
[ -f "$work/data/manifest.csv" ] || $bin demo-data --rows 200000 --seed 42 --out "$work/data" --quiet >/dev/null
bytes=$(wc -c <"$work/data/manifest.csv")
lines=$(($(wc -l <"$work/data/manifest.csv") - 1))
echo "manifest: $bytes bytes, $lines+ lines; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
times=()
for run in $(seq "$runs"); do
  rm -rf "$work/out"
  TIMEFORMAT='%R %U %S'
  measured=$( { time $bin curate "$work/data/manifest.csv" --out "$work/out" --quiet --force >/dev/null; } 2>&1 )
  read -r t user sys <<<"$measured"
  times+=("$t")
  cpu=$(awk "BEGIN {print $user + $sys}")
  printf 'run %d: %.2f s wall, %.2f s CPU (user %.2f + sys %.2f)\n' "$run" "$t" "$cpu" "$user" "$sys"
done
printf '%s\n' "${times[@]}" | sort -n \
  | awk '{a[NR]=$1} END {printf "median %.2f s, best %.2f s over %d runs\n", a[int((NR+1)/2)], a[1], NR}'
log_lines=$(($(wc -l <"$work/out/curation-log.csv") - 1))
echo "rows: $log_lines log lines (multi-line captions make wc count more than rows in train/val)"
