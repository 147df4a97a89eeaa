#!/usr/bin/env python3
"""Wraps the Swift lines over 120 characters that swift-format leaves alone, without changing any string.

swift-format breaks code but not string literals or comments. This script formats the files, then, for every line
still too long, splits the string literal that crosses the limit into a concatenation (`"a " + "b"`), continues a
line of a multi-line literal with a backslash (`a \\` then `b`: the same text), or wraps a `//` comment, and formats
again until nothing changes. It prefers a space near the middle of the literal, after punctuation, and never splits
inside an escape or an interpolation. What it cannot split (a code line, a comment without spaces) it lists.

    scripts/wrap_long_strings.py [PATH ...]     (default: Sources Tests Package.swift; then check with `make lint`)

A split where a String does not fit needs a hand fix: an `#expect` comment (`Comment(rawValue: ...)`), a `help:`
(`ArgumentHelp(...)`), a `.utf8` or other member of the literal (parentheses); the compiler names each one.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

LIMIT = 120
ROOT = Path(__file__).resolve().parent.parent


def scan_body(s: str, j: int, hashes: int, quoted: bool):
    """Scans a string body from j (raw string with `hashes` #s). Returns (end, split offsets) or None: end is just
    after the closing delimiter (quoted) or the line's end; the offsets lie outside escapes and interpolations."""
    escape = "\\" + "#" * hashes
    close = '"' + "#" * hashes
    safe = []
    while j < len(s):
        if s.startswith(escape, j):
            k = j + len(escape)
            if k < len(s) and s[k] == "(":
                depth = 0
                while k < len(s):
                    if s[k] == '"' or (s[k] == "#" and s.startswith('"', k + 1)):
                        inner = literal_at(s, k)
                        if inner is None:
                            return None
                        k = inner[0]
                        continue
                    depth += {"(": 1, ")": -1}.get(s[k], 0)
                    if depth == 0:
                        break
                    k += 1
            j = k + 1
            safe.append(j)
            continue
        if quoted and s.startswith(close, j):
            return j + len(close), safe
        j += 1
        safe.append(j)
    return None if quoted else (len(s), safe)


def literal_at(s: str, i: int):
    """The single-line literal starting at i (`"` or `#"`): (end, split offsets, hashes), or None."""
    hashes = len(s[i:]) - len(s[i:].lstrip("#"))
    if not s.startswith('"', i + hashes) or s.startswith('"""', i + hashes):
        return None
    scanned = scan_body(s, i + hashes + 1, hashes, True)
    return None if scanned is None else (scanned[0], scanned[1], hashes)


def literals(line: str):
    """The top-level single-line literals of a code line, or None when the line has a multi-line delimiter."""
    if '"""' in line:
        return None
    found, i = [], 0
    while i < len(line):
        if line.startswith("//", i):
            break
        if line[i] == '"' or re.match(r'#+"', line[i:]):
            literal = literal_at(line, i)
            if literal is None:
                return None
            found.append((i, *literal))
            i = literal[0]
            continue
        i += 1
    return found


def multiline_lines(lines: list[str]) -> dict[int, int]:
    """Index of each line inside a multi-line literal -> the literal's number of #s."""
    inside, state = {}, None
    for index, line in enumerate(lines):
        delimiters = list(re.finditer(r'(#*)"""', line))
        if state is not None and not delimiters:
            inside[index] = state
        for delimiter in delimiters:
            state = len(delimiter.group(1)) if state is None else None
    return inside


def best_split(safe, lo, hi, line, start, end):
    """A split offset in (lo, hi]: a space near the middle (after punctuation preferred), else a comma or `<`,
    else anywhere (text without spaces, e.g. Korean)."""
    candidates = [p for p in safe if lo < p <= hi and start < p < end - 1]
    if not candidates:
        return None
    middle = (start + end) / 2
    spaces = [p for p in candidates if line[p - 1] == " " and line[p - 2] != " " and line[p] != " "]
    if spaces:
        def score(p):
            value = abs(p - middle)
            if line[p - 2] in ":;,.":
                value -= 12
            if line[p - 2] == ")":  # keep a number with its unit
                value += 20
            if p - start < 15 or end - p < 15:
                value += 40
            return value
        return min(spaces, key=score)
    punctuation = [p for p in candidates if line[p - 1] in ",;}" or line[p] == "<"]
    return max(punctuation or candidates)


def wrap_line(lines: list[str], index: int, inside: dict[int, int]) -> list[str] | None:
    """The replacement lines for lines[index], or None when it cannot be wrapped."""
    line = lines[index]
    indent = len(line) - len(line.lstrip(" "))
    if index in inside:
        hashes = inside[index]
        closing = next((k for k in range(index + 1, len(lines)) if '"""' in lines[k]), None)
        scanned = scan_body(line, 0, hashes, False)
        if closing is None or scanned is None:
            return None
        delimiter_indent = len(lines[closing]) - len(lines[closing].lstrip(" "))
        cut = best_split(scanned[1], indent + 10, LIMIT - 1 - hashes, line, indent, len(line))
        if cut is None:
            return None
        return [line[:cut] + "\\" + "#" * hashes, " " * delimiter_indent + line[cut:]]
    if line.lstrip().startswith("//"):
        prefix = re.match(r"(\s*//+ ?)(\s*(?:[-*] |\d+\. )?)", line)
        spaces = [i for i in range(prefix.end() + 10, LIMIT) if line[i] == " " and line[i - 1] != " "]
        if not spaces:
            return None
        cut = max(spaces)
        return [line[:cut], prefix.group(1) + " " * len(prefix.group(2)) + line[cut + 1:]]
    found = literals(line)
    if not found:
        return None
    start, end, safe, hashes = next((f for f in found if f[1] > LIMIT), found[-1])
    cut = best_split(safe, start + 12 + hashes, LIMIT - 1 - hashes, line, start + hashes + 1, end - hashes)
    if cut is None:
        return None
    continuation = indent if line[:start].strip() == "+" else indent + 4
    quote = '"' + "#" * hashes
    return [line[:cut] + quote, " " * continuation + "+ " + "#" * hashes + '"' + line[cut:]]


def swift_files(paths: list[str]) -> list[Path]:
    files = []
    for path in map(Path, paths):
        files += sorted(path.rglob("*.swift")) if path.is_dir() else [path]
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["Sources", "Tests", "Package.swift"])
    parser.add_argument("--swift-format", default="swift-format", help="the swift-format command")
    arguments = parser.parse_args()
    wrapped, left = 0, []
    for _ in range(8):
        subprocess.run([arguments.swift_format, "format", "--in-place", "--recursive", *arguments.paths], check=True)
        changed, left = 0, []
        for path in swift_files(arguments.paths):
            lines = path.read_text(encoding="utf-8").split("\n")
            inside = multiline_lines(lines)
            long = [i for i, line in enumerate(lines) if len(line) > LIMIT]
            for index in reversed(long):  # bottom-up: earlier indices stay valid
                replacement = wrap_line(lines, index, inside)
                if replacement is None:
                    left.append(f"{path}:{index + 1}: {len(lines[index])} characters")
                    continue
                lines[index:index + 1] = replacement
                changed += 1
            if long:
                path.write_text("\n".join(lines), encoding="utf-8")
        wrapped += changed
        if changed == 0:
            break
    print(f"{wrapped} line(s) wrapped")
    for entry in left:
        print(f"{entry}: not wrapped (a code line, or no place to split): wrap it by hand", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
