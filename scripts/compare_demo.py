#!/usr/bin/env python3
"""Compare the outputs of two `make demo` runs: behaviour unchanged means these are equal.

    scripts/compare_demo.py BASE_DEMO_DIR NEW_DEMO_DIR [--same-folder BASE_TEXT=NEW_TEXT ...]

--same-folder says that a folder written into the outputs is the same folder under another name (a demo
run elsewhere, e.g. `--same-folder /work/main/demo=/tmp/d17 --same-folder demo/media=/tmp/d17/media`):
NEW_TEXT is replaced by BASE_TEXT in the new run's CSVs and report strings before they are compared.

Compared, each exactly:
- the statistics reports (report/report.json, media-report/report.json) as JSON values, minus the
  keys named in VOLATILE_JSON_KEYS (wall-clock facts that differ between any two runs);
- the curated CSVs (curated/train.csv, val.csv, curation-log.csv) and the prepared manifests
  (prepared/*.csv), byte for byte;
- every LoRA tensor the demo training wrote (runs/**/*.safetensors): same names, dtypes, shapes and
  bytes (the files' JSON metadata may differ: it is reported, not compared).

Prints one line per compared file and exits 1 on the first kind of difference listed in the summary.
Standard library only, so it runs anywhere `make demo` ran.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

# Keys whose values differ between any two runs of the same code (timings, dates, absolute paths of
# the folder the demo ran in). Removed wherever they occur in a report before comparing.
VOLATILE_JSON_KEYS = frozenset({"generated_at", "elapsed_seconds", "wall_seconds", "created_at"})

CSV_GLOBS = ("curated/*.csv", "prepared/*.csv")
REPORTS = ("report/report.json", "media-report/report.json")


def without_volatile(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_volatile(v) for k, v in value.items() if k not in VOLATILE_JSON_KEYS}
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    return value


def first_json_difference(a: object, b: object, where: str = "$") -> str | None:
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert isinstance(b, dict)
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{where}.{key}: only in {'new' if key not in a else 'base'}"
            found = first_json_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        assert isinstance(b, list)
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} elements"
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_json_difference(x, y, f"{where}[{index}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def safetensors_tensors(path: Path) -> tuple[dict[str, tuple[str, list[int], bytes]], dict[str, str]]:
    """(name -> (dtype, shape, raw bytes), metadata) of a .safetensors file, read without safetensors."""
    data = path.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    body = data[8 + header_length :]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        tensors[name] = (entry["dtype"], entry["shape"], body[start:end])
    return tensors, metadata


def renamed(text: str, same_folder: list[tuple[str, str]]) -> str:
    for base_text, new_text in same_folder:
        text = text.replace(new_text, base_text)
    return text


def renamed_json(value: object, same_folder: list[tuple[str, str]]) -> object:
    if isinstance(value, dict):
        return {k: renamed_json(v, same_folder) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed_json(v, same_folder) for v in value]
    return renamed(value, same_folder) if isinstance(value, str) else value


def compare(base: Path, new: Path, same_folder: list[tuple[str, str]] | None = None) -> list[str]:
    problems: list[str] = []
    same_folder = same_folder or []  # applied in the order given

    def missing(relative: str) -> bool:
        absent = [str(root / relative) for root in (base, new) if not (root / relative).is_file()]
        if absent:
            problems.append(f"{relative}: missing ({', '.join(absent)})")
        return bool(absent)

    for relative in REPORTS:
        if missing(relative):
            continue
        a = without_volatile(json.loads((base / relative).read_text()))
        b = renamed_json(without_volatile(json.loads((new / relative).read_text())), same_folder)
        difference = first_json_difference(a, b)
        print(f"{'DIFFERS' if difference else 'equal  '} {relative}" + (f"  ({difference})" if difference else ""))
        if difference:
            problems.append(f"{relative}: {difference}")

    csvs = sorted({p.relative_to(base).as_posix() for g in CSV_GLOBS for p in base.glob(g)}
                  | {p.relative_to(new).as_posix() for g in CSV_GLOBS for p in new.glob(g)})
    if not csvs:
        problems.append("no curated/prepared CSV files found")
    for relative in csvs:
        if missing(relative):
            continue
        new_text = renamed((new / relative).read_bytes().decode("utf-8", "surrogateescape"), same_folder)
        same = (base / relative).read_bytes() == new_text.encode("utf-8", "surrogateescape")
        print(f"{'equal  ' if same else 'DIFFERS'} {relative}")
        if not same:
            problems.append(f"{relative}: bytes differ")

    loras = sorted({p.relative_to(base).as_posix() for p in base.glob("runs/**/*.safetensors")}
                   | {p.relative_to(new).as_posix() for p in new.glob("runs/**/*.safetensors")})
    if not loras:
        problems.append("no LoRA files (runs/**/*.safetensors) found")
    for relative in loras:
        if missing(relative):
            continue
        (a, meta_a), (b, meta_b) = safetensors_tensors(base / relative), safetensors_tensors(new / relative)
        difference = None
        if sorted(a) != sorted(b):
            difference = f"tensor names differ: {sorted(set(a) ^ set(b))[:5]}"
        else:
            for name in sorted(a):
                if a[name] != b[name]:
                    difference = f"tensor {name} differs ({a[name][0]} {a[name][1]} vs {b[name][0]} {b[name][1]})"
                    break
        note = "" if meta_a == meta_b else "  (metadata differs: not compared)"
        print(f"{'DIFFERS' if difference else 'equal  '} {relative}: {len(a)} tensors{note}")
        if difference:
            problems.append(f"{relative}: {difference}")
    return problems


def main(argv: list[str]) -> int:
    same_folder: list[tuple[str, str]] = []
    words = argv[1:]
    folders = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--same-folder" and index + 1 < len(words) and "=" in words[index + 1]:
            base_text, new_text = words[index + 1].split("=", 1)
            same_folder.append((base_text, new_text))
            index += 2
            continue
        folders.append(word)
        index += 1
    if len(folders) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    base, new = Path(folders[0]), Path(folders[1])
    for root in (base, new):
        if not root.is_dir():
            print(f"{root}: not a folder (give the demo/ folders of two `make demo` runs)", file=sys.stderr)
            return 2
    problems = compare(base, new, same_folder)
    if problems:
        print(f"{len(problems)} difference(s):", *problems, sep="\n  ")
        return 1
    print("the two demo runs are equal")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
