#!/usr/bin/env bash
# Overhead of `wanlora prepare` against the same ffmpeg commands run directly with the same
# parallelism, on generated 1080p 29.97 fps H.264 clips.
#
#   bench/prepare_vs_ffmpeg.sh            # 8 clips, 2 jobs, 3 rounds
#   CLIPS=16 JOBS=4 ROUNDS=5 bench/prepare_vs_ffmpeg.sh
#
# The direct commands are exactly those `prepare --dry-run` prints (the same filter graph and
# encoder settings), run by `xargs -P JOBS`. The two are timed alternately (A B, B A, …) so that
# load from other processes falls on both, and the outputs are compared byte for byte. Besides
# wall time, CPU time (user + system, children included) is compared: it does not depend on
# what else the machine is doing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/wanlora}
CLIPS=${CLIPS:-8}
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_CLIP=${SECONDS_PER_CLIP:-6}
WORK=${WORK:-${TMPDIR:-/tmp}/wanlora-bench-prepare}

[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "ffmpeg is missing: make deps-media" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# Runs a command under GNU time; prints "WALL CPU" in seconds.
timed() {
  /usr/bin/time -f "%e %U %S" -o "$WORK/time.txt" "$@" > /dev/null
  awk '{ printf "%.2f %.2f", $1, $2 + $3 }' "$WORK/time.txt"
}
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK/src"
echo "generating $CLIPS clips of ${SECONDS_PER_CLIP} s, 1920x1080 29.97 fps H.264 ..." >&2
echo "path,media_type,width,height,duration,category,caption" > "$WORK/src/train.csv"
for i in $(seq 1 "$CLIPS"); do
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30000/1001" -t "$SECONDS_PER_CLIP" \
    -vf "hue=h=$((i * 30))" -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p "$WORK/src/clip$i.mp4"
  echo "clip$i.mp4,video,1920,1080,$SECONDS_PER_CLIP,축제,벤치마크 클립 $i" >> "$WORK/src/train.csv"
done

"$BIN" prepare "$WORK/src/train.csv" --out "$WORK/direct" --jobs "$JOBS" --dry-run --quiet > "$WORK/direct.sh"
commands=$(grep -c '^ffmpeg ' "$WORK/direct.sh")
echo "prepare plans $commands ffmpeg commands (1280x720, 81 frames at 16 fps, H.264 CRF 12)" >&2

run_prepare() {
  rm -rf "$WORK/prepared"
  timed "$BIN" prepare "$WORK/src/train.csv" --out "$WORK/prepared" --jobs "$JOBS" --quiet
}
run_direct() {
  rm -rf "$WORK/direct"
  timed sh -c "grep '^mkdir ' '$WORK/direct.sh' | sh \
    && grep '^ffmpeg ' '$WORK/direct.sh' | xargs -d '\\n' -P $JOBS -I{} sh -c '{} > /dev/null'"
}

prepare_times=(); prepare_cpu=()
direct_times=(); direct_cpu=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    p=$(run_prepare); d=$(run_direct)
  else
    d=$(run_direct); p=$(run_prepare)
  fi
  prepare_times+=("${p% *}"); prepare_cpu+=("${p#* }")
  direct_times+=("${d% *}"); direct_cpu+=("${d#* }")
  echo "round $round: prepare ${p% *} s wall ${p#* } s CPU, direct ffmpeg ${d% *} s wall ${d#* } s CPU;" \
    "load $(cut -d' ' -f1 /proc/loadavg)" >&2
done

# The same bytes: the same commands did the work.
same=yes
while IFS= read -r clip; do
  cmp -s "$WORK/prepared/$clip" "$WORK/direct/$clip" || same=no
done < <(cd "$WORK/direct" && find . -name '*.mp4' | sed 's|^\./||')

start=$(now)
"$BIN" prepare "$WORK/src/train.csv" --out "$WORK/prepared" --jobs "$JOBS" --quiet > /dev/null
rerun=$(elapsed "$start" "$(now)")

median() {
  printf '%s\n' "$@" | sort -n \
    | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
mp=$(median "${prepare_times[@]}")
md=$(median "${direct_times[@]}")
cp=$(median "${prepare_cpu[@]}")
cd=$(median "${direct_cpu[@]}")
ratio=$(awk -v p="$mp" -v d="$md" 'BEGIN { printf "%.3f", p / d }')
cpu_ratio=$(awk -v p="$cp" -v d="$cd" 'BEGIN { printf "%.3f", p / d }')
prepare_wall="wall median $mp s [${prepare_times[*]}]"
direct_wall="wall median $md s [${direct_times[*]}]"
cat <<REPORT
prepare vs direct ffmpeg: $CLIPS clips of 1080p29.97 H.264 -> 1280x720 81 frames, --jobs $JOBS, $ROUNDS rounds, \
$(nproc) cores
  prepare (probe + plan + encode + journal + manifest): $prepare_wall, CPU median $cp s [${prepare_cpu[*]}]
  direct ffmpeg, xargs -P $JOBS:                        $direct_wall, CPU median $cd s [${direct_cpu[*]}]
  ratio prepare / direct: wall $ratio, CPU $cpu_ratio
  outputs identical byte for byte: $same
  re-run with every clip finished (probe cache + journal, nothing encoded): $rerun s
REPORT
