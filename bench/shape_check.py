"""Compares the first dataset of a wanlora report.json with the seed report's all_data.csv shares
(SPEC §2) and prints each share, the seed's and the difference in percentage points.
Exit status 1 when a media-type, resolution or category share is a point or more away."""
import json
import sys

SEED = {
    "media type": {"image": 99_994, "video": 100_000},
    "resolution": {"1920×1080": 155_552, "720×512": 31_048, "1280×720": 11_724},
    "category": {"생활/문화": 57_300, "역사/사회": 36_158, "자연/풍경": 33_819, "공간/건축": 32_940,
                 "사건/사고": 21_209, "축제": 14_394, "유형문화유산": 2_220, "무형문화유산": 1_954},
}
TOTAL = 199_994

d = json.load(open(sys.argv[1], encoding="utf-8"))["datasets"][0]
ours = {
    "media type": {"image": d["media_types"]["images"]["share"], "video": d["media_types"]["videos"]["share"]},
    "resolution": {e["label"]: e["share"] for e in d["resolutions"]["distribution"]},
    "category": {e["label"]: e["share"] for e in d["categories"]["distribution"]},
}
worst = 0.0
print(f"{'what':<12} {'label':<10} {'wanlora':>9} {'seed':>9} {'diff (pt)':>10}")
for kind, counts in SEED.items():
    for label, count in counts.items():
        got = ours[kind].get(label, 0.0) * 100
        want = count / TOTAL * 100
        worst = max(worst, abs(got - want))
        print(f"{kind:<12} {label:<10} {got:9.2f} {want:9.2f} {got - want:+10.2f}")
other = 100 - sum(ours["resolution"].get(label, 0.0) * 100 for label in SEED["resolution"])
print(f"{'resolution':<12} {'other':<10} {other:9.2f} {1_670 / TOTAL * 100:9.2f} {other - 1_670 / TOTAL * 100:+10.2f}")
print(f"largest difference: {worst:.2f} points (must be < 1)")
sys.exit(0 if worst < 1 else 1)
