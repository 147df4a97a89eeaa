"""The two morpheme units against each other (issue 23): CPU time and agreement of `word` and `caption`.

    engine/.venv/bin/python bench/morpheme_units.py MANIFEST.csv [CAPTIONS]   (default 300 captions)

Analyses the first CAPTIONS captions of MANIFEST with Kiwi (one thread) whole (`caption`) and by distinct
space-separated word (`word`, a cold word cache), and prints the CPU seconds of each and how many content
words and morphemes agree (multiset intersection over the larger count, summed over the captions).
"""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from wanlora_engine import morphemes as m  # noqa: E402


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
    with open(path, encoding="utf-8-sig", newline="") as source:
        texts = [row["caption"] for _, row in zip(range(count), csv.DictReader(source))]
    kiwi = m.make_kiwi(1)
    next(m.analyse(["준비"], kiwi))  # Kiwi loads parts of its model on first use: not counted
    started = time.process_time()
    whole = list(m.analyse(texts, kiwi))
    caption_seconds = time.process_time() - started
    vocabulary = m.Vocabulary()
    started = time.process_time()
    by_word = [record for chunk in m.records_by_word(iter(texts), kiwi, vocabulary, 4096) for record in chunk]
    word_seconds = time.process_time() - started
    types, words = list(vocabulary.morphemes), list(vocabulary.content_words)
    agree = {"content words": [0, 0], "morphemes": [0, 0]}
    for caption, (_, morpheme_ids, word_ids) in zip(whole, by_word):
        pairs = {"content words": (caption.content_words, [words[i] for i in word_ids]),
                 "morphemes": (caption.morphemes, [types[i] for i in morpheme_ids])}
        for name, (a, b) in pairs.items():
            first, second = Counter(a), Counter(b)
            agree[name][0] += sum((first & second).values())
            agree[name][1] += max(sum(first.values()), sum(second.values()))
    print(f"{len(texts)} captions: caption unit {caption_seconds:.1f} s CPU, word unit {word_seconds:.1f} s CPU; "
          + ", ".join(f"{name} agreeing {same / total:.4f}" for name, (same, total) in agree.items()))


if __name__ == "__main__":
    main()
