"""Renders the rows test_faults.py measured (the JSON of $WANLORA_FAULT_TABLE) as the Markdown table of
docs/fault-tolerance.md:

    .venv/bin/python tests/fault_table.py /tmp/faults.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def render(rows: list[dict]) -> str:
    lines = ["| fault | where | outcome | steps repeated | seconds |", "|---|---|---|---:|---:|"]
    for row in rows:
        repeated = "—" if row["steps_repeated"] is None else str(row["steps_repeated"])
        lines.append(f"| {row['fault']} | {row['where']} | {row['outcome']} | {repeated} | {row['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(json.loads(Path(sys.argv[1]).read_text())))
