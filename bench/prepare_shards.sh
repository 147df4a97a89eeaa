#!/usr/bin/env bash
# `wanlora prepare` in one run against N shards plus `--merge`, on the demo media (35 files).
#
#   bench/prepare_shards.sh                               # 3 shards, 2 jobs each
#   SHARDS=4 JOBS=1 DEMO=/tmp/demo-media bench/prepare_shards.sh
#
# The shards run one after another on this machine: their sum is the work of the sharded run, the
# longest one the wall time it would take on N machines. Wall and CPU time (user + system, ffmpeg
# included) are measured with GNU time; CPU time does not depend on what else the machine does.
# The merged folder is then compared with the single run's: every result CSV and every clip, byte
# for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/wanlora}
SHARDS=${SHARDS:-3}
JOBS=${JOBS:-2}
WORK=${WORK:-${TMPDIR:-/tmp}/wanlora-bench-shards}
DEMO=${DEMO:-$WORK/demo}
OPTIONS=(--resolution 64x48 --frames 5 --min-frames 5 --jobs "$JOBS" --progress none)

[ -x "$BIN" ] || { echo "build first: make build (or BIN=.build/debug/wanlora)" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "ffmpeg is missing: make deps-media" >&2; exit 1; }
mkdir -p "$WORK"
[ -f "$DEMO/train.csv" ] || "$BIN" demo-data --media --out "$DEMO" > /dev/null

# Runs a command under GNU time; prints "WALL CPU" in seconds.
timed() {
  /usr/bin/time -f "%e %U %S" -o "$WORK/time.txt" "$@" > "$WORK/last.log"
  awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$WORK/time.txt"
}

rm -rf "$WORK/single" "$WORK/sharded"
read -r single_wall single_cpu < <(timed "$BIN" prepare "$DEMO/train.csv" "$DEMO/val.csv" --out "$WORK/single" \
  "${OPTIONS[@]}")
folders=()
sum_wall=0; sum_cpu=0; longest=0; shares=()
for k in $(seq 1 "$SHARDS"); do
  folder="$WORK/sharded/shard-$k-of-$SHARDS"
  read -r wall cpu < <(timed "$BIN" prepare "$DEMO/train.csv" "$DEMO/val.csv" --out "$folder" --shard "$k/$SHARDS" \
    "${OPTIONS[@]}")
  folders+=("$folder")
  shares+=("$(grep -o 'check: [0-9,]* items' "$WORK/last.log" | grep -o '[0-9,]*')")
  sum_wall=$(awk -v a="$sum_wall" -v b="$wall" 'BEGIN { printf "%.2f", a + b }')
  sum_cpu=$(awk -v a="$sum_cpu" -v b="$cpu" 'BEGIN { printf "%.2f", a + b }')
  longest=$(awk -v a="$longest" -v b="$wall" 'BEGIN { printf "%.2f", (b > a ? b : a) }')
done
read -r merge_wall merge_cpu < <(timed "$BIN" prepare --merge "${folders[@]}" --out "$WORK/sharded")

same=yes
for name in manifest.csv train.csv val.csv quarantine.csv skipped.csv; do
  cmp -s "$WORK/single/$name" "$WORK/sharded/$name" || { echo "differs: $name" >&2; same=no; }
done
clips=0
while IFS= read -r clip; do
  clips=$((clips + 1))
  cmp -s "$WORK/single/$clip" "$WORK/sharded/$clip" || { echo "differs: $clip" >&2; same=no; }
done < <(cd "$WORK/single" && find train val -type f ! -name '.*')

echo "| run | wall s | CPU s |"
echo "|---|---:|---:|"
echo "| one prepare | $single_wall | $single_cpu |"
echo "| $SHARDS shards one after another (items: ${shares[*]}) | $sum_wall | $sum_cpu |"
echo "| the longest shard (wall time on $SHARDS machines) | $longest | |"
echo "| --merge ($clips clips) | $merge_wall | $merge_cpu |"
echo "merged result equals the single run byte for byte: $same"
