"""The peer for `wanlora analyze`: the same statistics computed with polars, the way a pandas or
polars notebook would, printed in the same canonical form as bench/print_wanlora_stats.py prints
wanlora's report.json. Definitions follow SPEC §2 exactly (NFC, trimmed scalar counts, words as
maximal runs of letters/marks/numbers lower-cased, Gini over category counts, Pearson over videos).

usage: python analyze_polars.py MANIFEST.csv [--target 1280x720]
"""
import argparse
import sys

import polars as pl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest")
    parser.add_argument("--target", default="1280x720")
    args = parser.parse_args()
    target_w, target_h = (int(v) for v in args.target.lower().split("x"))

    df = pl.read_csv(
        args.manifest,
        schema_overrides={"width": pl.Int64, "height": pl.Int64, "duration": pl.Float64,
                          "caption": pl.Utf8, "category": pl.Utf8, "media_type": pl.Utf8, "path": pl.Utf8},
        infer_schema_length=0,
    )
    df = df.with_columns(pl.col("media_type").str.strip_chars().str.to_lowercase())
    n = df.height
    out: list[tuple[str, str]] = []

    images = df.filter(pl.col("media_type") == "image").height
    videos = df.filter(pl.col("media_type") == "video").height
    out += [("items", f"{n}"), ("images", f"{images}"), ("videos", f"{videos}")]

    res = (df.group_by(["width", "height"]).len()
           .sort(["len", "width", "height"], descending=[True, False, False]))
    for w, h, c in res.head(4).iter_rows():
        out.append((f"resolution {w}x{h}", f"{c}"))
    at_target = df.filter((pl.col("width") == target_w) & (pl.col("height") == target_h)).height
    out.append(("at target", f"{at_target}"))

    vid = df.filter(pl.col("media_type") == "video")
    d = vid["duration"]
    out += [("duration mean", f"{d.mean():.4f}"), ("duration min", f"{d.min():.4f}"),
            ("duration max", f"{d.max():.4f}")]
    edges = [0, 10, 20, 30, 60]
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        cond = (pl.col("duration") >= lo) if hi is None else ((pl.col("duration") >= lo) & (pl.col("duration") < hi))
        if i == 0:
            cond = pl.col("duration") < hi
        out.append((f"duration bucket {lo}", f"{vid.filter(cond).height}"))

    cats = df.group_by("category").len().sort(["len", "category"], descending=[True, False])
    counts = cats["len"].to_list()
    for cat, c in cats.iter_rows():
        out.append((f"category {cat}", f"{c}"))
    k = len(counts)
    mean = sum(counts) / k
    gini = sum(abs(a - b) for a in counts for b in counts) / (2 * k * k * mean)
    out += [("category max/min", f"{max(counts) / min(counts):.4f}"), ("category gini", f"{gini:.4f}")]

    caps = df.select(
        pl.col("media_type"), pl.col("duration"),
        pl.col("caption").str.normalize("NFC").str.strip_chars().alias("c"),
    )
    caps = caps.with_columns(
        pl.col("c").str.len_chars().alias("length"),
        pl.col("c").str.to_lowercase().str.extract_all(r"[\p{L}\p{M}\p{N}]+").alias("words"),
    )
    caps = caps.with_columns(
        pl.col("words").list.len().alias("n_words"),
        pl.col("words").list.n_unique().alias("n_unique"),
    )
    length = caps["length"]
    out += [("caption length mean", f"{length.mean():.4f}"), ("caption length min", f"{length.min()}"),
            ("caption length max", f"{length.max()}")]
    ttr = caps.filter(pl.col("n_words") > 0).select((pl.col("n_unique") / pl.col("n_words")).alias("ttr"))["ttr"]
    out += [("caption ttr mean", f"{ttr.mean():.4f}"), ("caption ttr min", f"{ttr.min():.4f}"),
            ("caption ttr max", f"{ttr.max():.4f}")]
    nw = caps["n_words"]
    out += [("words per caption mean", f"{nw.mean():.4f}"), ("words per caption min", f"{nw.min()}"),
            ("words per caption max", f"{nw.max()}")]
    freq = (caps.select(pl.col("words").explode().alias("w")).drop_nulls()
            .group_by("w").len().sort(["len", "w"], descending=[True, False]))
    total = int(freq["len"].sum())
    unique = freq.height
    out += [("total words", f"{total}"), ("unique words", f"{unique}"), ("corpus ttr", f"{unique / total:.4f}")]
    for rank, (w, c) in enumerate(freq.head(10).iter_rows(), start=1):
        out.append((f"top word {rank}", f"{w} {c}"))

    v = caps.filter(pl.col("media_type") == "video")
    r = v.select(pl.corr("duration", "length"))[0, 0]
    out.append(("pearson duration caption", f"{r:.4f}"))

    for key, value in out:
        print(f"{key}\t{value}")


if __name__ == "__main__":
    sys.exit(main())
