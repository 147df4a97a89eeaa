#!/usr/bin/env bash
# wanlora analyze vs a polars script computing the same statistics on the same file.
#
#   bench/analyze_vs_polars.sh [ROWS] [RUNS]      (defaults: 199994 rows, 3 runs each)
#
# Generates a demo manifest shaped like the MBC archive, runs both tools RUNS times
# (alternating), checks that both print the same numbers, and prints wall time (median),
# peak memory and the ratio. Needs python3 (a venv with polars is made in bench/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-199994}
RUNS=${2:-3}
WORK=${WORK:-/tmp/wanlora-bench-analyze}
mkdir -p "$WORK"

swift build -c release --product wanlora >/dev/null
BIN=.build/release/wanlora
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c "import polars" 2>/dev/null; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q polars
fi
PY=bench/.venv/bin/python

MANIFEST="$WORK/manifest-$ROWS.csv"
if [ ! -f "$MANIFEST" ]; then
  $BIN demo-data --rows "$ROWS" --seed 42 --out "$WORK/gen-$ROWS" --quiet >/dev/null
  mv "$WORK/gen-$ROWS/manifest.csv" "$MANIFEST"
fi
SIZE=$(stat -c %s "$MANIFEST")
cat "$MANIFEST" >/dev/null  # warm the page cache for both tools alike

measure() {  # prints "seconds peak_kib"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >"$WORK/stdout.txt" 2>"$WORK/stderr.txt"
  cat "$WORK/time.txt"
}

wan_times=(); wan_mem=(); pol_times=(); pol_mem=()
for run in $(seq "$RUNS"); do
  read -r t m < <(measure $BIN analyze "$MANIFEST" --out "$WORK/report" --quiet --force)
  wan_times+=("$t"); wan_mem+=("$m")
  read -r t m < <(measure $PY bench/analyze_polars.py "$MANIFEST")
  pol_times+=("$t"); pol_mem+=("$m")
  cp "$WORK/stdout.txt" "$WORK/polars.txt"
done
$PY bench/print_wanlora_stats.py "$WORK/report/report.json" >"$WORK/wanlora.txt"
if diff -q "$WORK/wanlora.txt" "$WORK/polars.txt" >/dev/null; then
  SAME=yes
else
  SAME=NO; diff "$WORK/wanlora.txt" "$WORK/polars.txt" | head -20
fi

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }
WT=$(median "${wan_times[@]}"); PT=$(median "${pol_times[@]}")
WM=$(max "${wan_mem[@]}"); PM=$(max "${pol_mem[@]}")
echo
MIB=$(awk "BEGIN{printf \"%.1f\", $SIZE/1048576}")
echo "manifest: $MANIFEST ($ROWS rows, $MIB MiB); $(nproc) cores; $RUNS runs each"
printf "%-10s %10s %14s %12s\n" tool "wall (s)" "peak RSS (MiB)" "RSS / file"
row() {  # tool, wall seconds, peak RSS in KiB
  printf "%-10s %10s %14.0f %12.2f\n" "$1" "$2" "$(awk "BEGIN{print $3/1024}")" "$(awk "BEGIN{print $3*1024/$SIZE}")"
}
row wanlora "$WT" "$WM"
row polars "$PT" "$PM"
echo "wanlora / polars wall time: $(awk "BEGIN{printf \"%.3f\", $WT/$PT}")   same numbers: $SAME"
echo "all wanlora runs: ${wan_times[*]} s; all polars runs: ${pol_times[*]} s"
echo
echo "shape of the demo manifest against the seed report (SPEC §2):"
$PY bench/shape_check.py "$WORK/report/report.json"
