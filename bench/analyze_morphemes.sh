#!/usr/bin/env bash
# `wanlora analyze --morphemes` on the demo archive with its splits: the morpheme pass's wall time,
# its engine's peak memory and its share of the whole command (issue 23).
#
#   bench/analyze_morphemes.sh [ROWS] [UNIT]      (defaults: 199994 rows, unit word)
#
# Runs once (the machine is shared): `analyze --timings` prints the wall time of each phase (read,
# morphemes, compute, write) and the engine's own summary (threads, model load, peak memory);
# /usr/bin/time gives the whole command's wall time and the peak memory of wanlora itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-199994}
UNIT=${2:-word}
WORK=${WORK:-/tmp/wanlora-bench-morphemes}
mkdir -p "$WORK"

swift build -c release --product wanlora >/dev/null
make -s -C engine venv
BIN=.build/release/wanlora
DATA="$WORK/demo-$ROWS"
[ -f "$DATA/manifest.csv" ] || $BIN demo-data --rows "$ROWS" --seed 42 --splits --out "$DATA" --quiet >/dev/null
cat "$DATA"/*.csv >/dev/null  # warm the page cache

/usr/bin/time -f "total %e s, wanlora peak %M KiB" -o "$WORK/time.txt" \
  $BIN analyze "$DATA/manifest.csv" --split "train=$DATA/train.csv" --split "val=$DATA/val.csv" \
  --out "$WORK/report-$UNIT" --force --quiet --timings --morphemes --morpheme-unit "$UNIT" \
  >"$WORK/stdout.txt" 2>"$WORK/stderr.txt"
grep -E "^(timing|morphemes):" "$WORK/stderr.txt"
cat "$WORK/time.txt"
echo "report: $WORK/report-$UNIT/report.md"
