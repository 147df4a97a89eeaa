"""Prints the first dataset of a wanlora report.json in the canonical form of analyze_polars.py,
so that `diff` shows whether both tools computed the same numbers."""
import json
import sys

report = json.load(open(sys.argv[1], encoding="utf-8"))
d = report["datasets"][0]
out = [("items", d["items"]), ("images", d["media_types"]["images"]["count"]),
       ("videos", d["media_types"]["videos"]["count"])]
for entry in d["resolutions"]["distribution"][:4]:
    w, h = entry["label"].split("×")
    out.append((f"resolution {w}x{h}", entry["count"]))
out.append(("at target", d["resolutions"]["at_target"]["count"]))
s = d["durations"]["seconds"]
out += [("duration mean", f"{s['mean']:.4f}"), ("duration min", f"{s['min']:.4f}"), ("duration max", f"{s['max']:.4f}")]
for bucket in d["durations"]["buckets"]:
    out.append((f"duration bucket {int(bucket['lower'])}", bucket["count"]))
for entry in d["categories"]["distribution"]:
    out.append((f"category {entry['label']}", entry["count"]))
out += [("category max/min", f"{d['categories']['max_min_ratio']:.4f}"),
        ("category gini", f"{d['categories']['gini']:.4f}")]
length = d["captions"]["length"]
out += [("caption length mean", f"{length['mean']:.4f}"), ("caption length min", int(length["min"])),
        ("caption length max", int(length["max"]))]
w = d["words"]
t = w["caption_ttr"]
out += [("caption ttr mean", f"{t['mean']:.4f}"), ("caption ttr min", f"{t['min']:.4f}"),
        ("caption ttr max", f"{t['max']:.4f}")]
p = w["words_per_caption"]
out += [("words per caption mean", f"{p['mean']:.4f}"), ("words per caption min", int(p["min"])),
        ("words per caption max", int(p["max"]))]
out += [("total words", w["total_words"]), ("unique words", w["unique_words"]),
        ("corpus ttr", f"{w['corpus_ttr']:.4f}")]
for rank, entry in enumerate(w["top_words"][:10], start=1):
    out.append((f"top word {rank}", f"{entry['word']} {entry['count']}"))
out.append(("pearson duration caption", f"{d['duration_caption_correlation']:.4f}"))
for key, value in out:
    print(f"{key}\t{value}")
