#!/usr/bin/env python3
"""Fails when a source line is longer than the limit (120 characters), printing file:line: length.

swift-format and ruff wrap code but leave long string literals and comments alone, so this check
covers what they cannot: the Swift sources and tests, the engine, the bench and scripts, the Makefiles.

    scripts/check_line_length.py [--limit N] [PATH ...]    (default: the whole tree from the repo root)
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (folder, file name patterns) checked by default, relative to the repository root.
DEFAULT_SETS = [
    ("Sources", ["*.swift"]),
    ("Tests", ["*.swift"]),
    ("engine", ["*.py"]),
    ("bench", ["*.py", "*.sh"]),
    ("scripts", ["*"]),
]
DEFAULT_FILES = ["Package.swift", "Makefile", "engine/Makefile"]
SKIPPED_PARTS = {".venv", ".build", "__pycache__", "build", "dist", ".git", "results"}


def default_paths() -> list[Path]:
    paths = [ROOT / name for name in DEFAULT_FILES if (ROOT / name).is_file()]
    for folder, patterns in DEFAULT_SETS:
        for pattern in patterns:
            for path in sorted((ROOT / folder).rglob(pattern)):
                relative = path.relative_to(ROOT).parts
                if path.is_file() and not SKIPPED_PARTS.intersection(relative) and not path.name.startswith("."):
                    paths.append(path)
    return sorted(set(paths))


def long_lines(path: Path, limit: int) -> list[tuple[int, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []  # a binary file (a compiled helper in scripts/) has no lines to check
    return [(number, len(line)) for number, line in enumerate(text.splitlines(), start=1) if len(line) > limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=120, help="longest allowed line, in characters (default 120)")
    parser.add_argument("paths", nargs="*", type=Path, help="files to check (default: the whole tree)")
    arguments = parser.parse_args()
    paths = arguments.paths or default_paths()
    found = 0
    for path in paths:
        for number, length in long_lines(path, arguments.limit):
            shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
            print(f"{shown}:{number}: {length} characters (limit {arguments.limit})")
            found += 1
    if found:
        print(f"{found} line(s) longer than {arguments.limit} characters", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
