"""Korean morphemes of captions with Kiwi (`wanlora analyze --morphemes`, curate's template flag).

Korean glues particles and endings to its stems (사람이, 사람들이, 있으며), so words split on spaces count
one noun as many types. Kiwi (kiwipiepy, its model shipped in the kiwipiepy-model package, no network)
splits each caption into morphemes with part-of-speech tags; the Swift side aggregates what this module
returns. The definitions live here, once:

- a *morpheme* is one Kiwi token that is not punctuation or a symbol (tags in `SYMBOL_TAGS`); its type
  is ``form/TAG`` with the conjugation suffix of the tag dropped (``입/VV-R`` and ``입/VV`` are one
  type ``입/VV``) and Latin letters lower-cased (Kiwi's SL tokens);
- a *content word* is a common or proper noun (NNG, NNP) as written, or a verb or adjective stem (VV,
  VA, also their -R/-I forms) with 다 appended: 입 → 입다, 아름답 → 아름답다;
- a caption's *script* is `hangul` (Hangul and no Latin letter), `mixed` (both), `other` (letters but
  no Hangul, e.g. English) or `no_letters` (numbers and symbols only).

Files (little-endian; written and read by `wanlora`):

input   b"WLCAPS01", uint32 N, then N records: uint32 byte length, UTF-8 caption bytes
output  b"WLMORP01", uint32 N, then N records: uint8 script, uint32 M, M × uint32 morpheme type ids
        (in caption order), uint32 C, C × uint32 content word ids (in caption order)
vocabulary  JSON {"morphemes": [type, ...], "content_words": [word, ...]}: id i is entry i

Events on stdout (docs/engine-contract.md): `morpheme_progress` per batch, then `morpheme_summary`;
an `error` event and exit 2 for an unreadable input, 1 when Kiwi is missing.
"""

from __future__ import annotations

import json
import os
import re
import resource
import struct
import sys
import time
import unicodedata
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import ConfigError, EngineError

INPUT_MAGIC = b"WLCAPS01"
OUTPUT_MAGIC = b"WLMORP01"

# Punctuation and symbols: SF . ? !, SP , / : ;, SS quotes and brackets (SSO/SSC open/close), SE …,
# SO - ~, SW other symbols, SB list markers, W_EMOJI. Numbers (SN), Latin (SL), Hanja (SH) and web
# tokens (W_URL, W_EMAIL, W_HASHTAG, W_MENTION, W_SERIAL) stay: they are words of the caption.
SYMBOL_TAGS = frozenset({"SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "SB", "W_EMOJI"})
NOUN_TAGS = frozenset({"NNG", "NNP"})
PREDICATE_TAGS = frozenset({"VV", "VA"})

SCRIPTS = ("hangul", "mixed", "other", "no_letters")
assert array("I").itemsize == 4, "the output file's ids are 4-byte unsigned integers"


def base_tag(tag: str) -> str:
    """The tag without Kiwi's conjugation suffix: VV-R (regular) and VV-I (irregular) are VV."""
    return tag.split("-", 1)[0]


def morpheme_type(form: str, tag: str) -> str | None:
    """The morpheme's type (``form/TAG``), or None for punctuation and symbols."""
    tag = base_tag(tag)
    if tag in SYMBOL_TAGS:
        return None
    if tag == "SL":
        form = form.lower()
    return f"{form}/{tag}"


def content_word(form: str, tag: str) -> str | None:
    """The content word of a morpheme: a noun as written, a verb or adjective stem + 다; else None."""
    tag = base_tag(tag)
    if tag in NOUN_TAGS:
        return form
    if tag in PREDICATE_TAGS:
        return form + "다"
    return None


_HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")  # Latin letters, not × or ÷
_LETTER = re.compile(r"[^\W\d_]")


def script_of(text: str) -> str:
    """`hangul`, `mixed`, `other` or `no_letters` (see the module's definitions)."""
    hangul = _HANGUL.search(text) is not None
    latin = _LATIN.search(text) is not None
    if hangul:
        return "mixed" if latin else "hangul"
    return "other" if latin or _LETTER.search(text) is not None else "no_letters"


@dataclass
class CaptionMorphemes:
    """One caption analysed: its script, its morpheme types and content words, both in caption order."""

    script: str
    morphemes: list[str]
    content_words: list[str]


def analyse_tokens(text: str, tokens: Iterable[object]) -> CaptionMorphemes:
    """Turns Kiwi's tokens of `text` (objects with `form` and `tag`) into the module's definitions."""
    morphemes: list[str] = []
    words: list[str] = []
    for token in tokens:
        form, tag = token.form, token.tag  # type: ignore[attr-defined]
        kind = morpheme_type(form, tag)
        if kind is None:
            continue
        morphemes.append(kind)
        word = content_word(form, tag)
        if word is not None:
            words.append(word)
    return CaptionMorphemes(script=script_of(text), morphemes=morphemes, content_words=words)


def make_kiwi(workers: int):  # -> kiwipiepy.Kiwi
    """Kiwi with `workers` threads of its own (0: one per core), its model from kiwipiepy-model."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as error:
        raise EngineError(f"the Korean morphological analyser Kiwi is not installed in {sys.executable} ({error})",
                          "install the engine again: `make -C engine venv` (it installs kiwipiepy and "
                          "kiwipiepy-model from engine/pyproject.toml)", code="kiwi_missing") from error
    return Kiwi(num_workers=threads(workers))


def threads(workers: int) -> int:
    """Kiwi's thread count for `workers` (0: one per core). Kiwi reads num_workers=0 otherwise since 0.21
    (its old default, slower here), so the count is always named."""
    return workers if workers > 0 else (os.cpu_count() or 1)


def kiwi_version() -> str:
    """kiwipiepy's version (the model package follows it)."""
    import kiwipiepy

    return kiwipiepy.__version__


def analyse(texts: Iterable[str], kiwi) -> Iterator[CaptionMorphemes]:
    """Every text analysed, in order; Kiwi's own threads work on several texts at once (it reads ahead
    of the results it yields, so the texts in flight wait in a queue to be paired with their tokens)."""
    in_flight: deque[str] = deque()

    def remember(stream: Iterable[str]) -> Iterator[str]:
        for text in stream:
            in_flight.append(text)
            yield text

    for tokens in kiwi.tokenize(remember(texts)):
        yield analyse_tokens(in_flight.popleft(), tokens)


def read_captions(stream: BinaryIO, source: str) -> tuple[int, Iterator[str]]:
    """The caption count of an input file and an iterator over its captions."""
    header = stream.read(12)
    if len(header) < 12 or header[:8] != INPUT_MAGIC:
        raise ConfigError(f"{source} is not a caption file of wanlora (it does not start with {INPUT_MAGIC!r})",
                          "let `wanlora analyze --morphemes` write it; do not pass another file")
    (count,) = struct.unpack("<I", header[8:])

    def captions() -> Iterator[str]:
        for index in range(count):
            prefix = stream.read(4)
            if len(prefix) < 4:
                raise ConfigError(f"{source} ends after {index} of {count} captions",
                                  "the file was cut short: run `wanlora analyze --morphemes` again")
            (length,) = struct.unpack("<I", prefix)
            data = stream.read(length)
            if len(data) < length:
                raise ConfigError(f"{source}: caption {index} is cut short ({len(data)} of {length} bytes)",
                                  "the file was cut short: run `wanlora analyze --morphemes` again")
            # Decomposed (NFD) Hangul is composed first: Kiwi's dictionary is in NFC.
            yield unicodedata.normalize("NFC", data.decode("utf-8", errors="replace"))

    return count, captions()


def write_captions(path: Path, captions: Iterable[str]) -> None:
    """The input format (for tests and for calling the stage by hand)."""
    encoded = [text.encode("utf-8") for text in captions]
    with open(path, "wb") as out:
        out.write(INPUT_MAGIC + struct.pack("<I", len(encoded)))
        for data in encoded:
            out.write(struct.pack("<I", len(data)) + data)


@dataclass
class Vocabulary:
    """Ids of morpheme types and content words, in order of first appearance."""

    morphemes: dict[str, int] = field(default_factory=dict)
    content_words: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def _id(table: dict[str, int], key: str) -> int:
        found = table.get(key)
        if found is None:
            found = table[key] = len(table)
        return found

    def ids(self, caption: CaptionMorphemes) -> tuple[list[int], list[int]]:
        return ([self._id(self.morphemes, kind) for kind in caption.morphemes],
                [self._id(self.content_words, word) for word in caption.content_words])

    def to_json(self) -> dict[str, list[str]]:
        return {"morphemes": list(self.morphemes), "content_words": list(self.content_words)}


def _u32(values: list[int]) -> bytes:
    """Little-endian uint32s (array is several times faster than struct.pack for long lists)."""
    packed = array("I", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def encode_record(script: str, morphemes: list[int], words: list[int]) -> bytes:
    """One caption of the output file."""
    return b"".join((struct.pack("<BI", SCRIPTS.index(script), len(morphemes)), _u32(morphemes),
                     struct.pack("<I", len(words)), _u32(words)))


UNITS = ("caption", "word")


def _batches(captions: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in captions:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def records_by_caption(captions: Iterator[str], kiwi, vocabulary: Vocabulary, batch: int
                       ) -> Iterator[list[tuple[str, list[int], list[int]]]]:
    """`caption` unit: each caption analysed whole, in its context (exact, the slower way)."""
    chunk: list[tuple[str, list[int], list[int]]] = []
    for caption in analyse(captions, kiwi):
        chunk.append((caption.script, *vocabulary.ids(caption)))
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def records_by_word(captions: Iterator[str], kiwi, vocabulary: Vocabulary, batch: int
                    ) -> Iterator[list[tuple[str, list[int], list[int]]]]:
    """`word` unit: each distinct space-separated word (eojeol) analysed once, on its own, and every
    caption made of its words' analyses. Captions repeat words far more than they repeat themselves (the
    199,994-row demo: 21 million words, about half a million distinct), so this does a small fraction of
    the work; the price is Kiwi's context across words, which `caption` keeps (docs/report-schema.md
    gives the agreement measured between the two)."""
    known: dict[str, tuple[list[int], list[int]]] = {}
    for texts in _batches(captions, batch):
        split = [text.split() for text in texts]
        new = list(dict.fromkeys(word for words in split for word in words if word not in known))
        for word, tokens in zip(new, kiwi.tokenize(new)):
            known[word] = vocabulary.ids(analyse_tokens(word, tokens))
        chunk = []
        for text, words in zip(texts, split):
            morphemes: list[int] = []
            content: list[int] = []
            for word in words:
                word_morphemes, word_content = known[word]
                morphemes.extend(word_morphemes)
                content.extend(word_content)
            chunk.append((script_of(text), morphemes, content))
        yield chunk


def run_morphemes(input_path: Path, output_path: Path, vocabulary_path: Path, workers: int, batch: int,
                  events, unit: str = "word") -> dict[str, object]:
    """Analyses every caption of `input_path` by `unit` (`UNITS`); writes the output and vocabulary files;
    returns the summary. `events` gets a `morpheme_progress` event after every `batch` captions."""
    started = time.monotonic()
    if unit not in UNITS:
        raise ConfigError(f"unknown morpheme unit {unit!r}", f"use one of {', '.join(UNITS)}")
    try:
        source = open(input_path, "rb")
    except OSError as error:
        raise ConfigError(f"cannot read the caption file {input_path}: {error.strerror}",
                          "check the path; `wanlora analyze --morphemes` writes it") from error
    with source:
        # The header is checked before Kiwi's model loads (seconds): a wrong file fails at once.
        count, captions = read_captions(source, str(input_path))
        kiwi = make_kiwi(workers)
        loaded = time.monotonic()
        vocabulary = Vocabulary()
        scripts = dict.fromkeys(SCRIPTS, 0)
        morpheme_tokens = content_tokens = done = 0
        with open(output_path, "wb") as out:
            out.write(OUTPUT_MAGIC + struct.pack("<I", count))
            events.emit("morpheme_progress", done=0, total=count, captions_per_second=None)
            records = records_by_word if unit == "word" else records_by_caption
            for chunk in records(captions, kiwi, vocabulary, batch):
                out.write(b"".join(encode_record(*record) for record in chunk))
                for script, morphemes, content in chunk:
                    scripts[script] += 1
                    morpheme_tokens += len(morphemes)
                    content_tokens += len(content)
                done += len(chunk)
                elapsed = time.monotonic() - loaded
                events.emit("morpheme_progress", done=done, total=count,
                            captions_per_second=done / elapsed if elapsed > 0 else None)
    vocabulary_path.write_text(json.dumps(vocabulary.to_json(), ensure_ascii=False), encoding="utf-8")
    summary: dict[str, object] = {
        "analyser": f"Kiwi {kiwi_version()}", "captions": count, "morphemes": morpheme_tokens,
        "content_words": content_tokens,
        "morpheme_types": len(vocabulary.morphemes), "content_word_types": len(vocabulary.content_words),
        "scripts": scripts, "unit": unit, "workers": threads(workers), "model_load_seconds": round(loaded - started, 3),
        "seconds": round(time.monotonic() - started, 3),
        # Linux reports ru_maxrss in KiB: the whole stage's peak (model, vocabulary, word cache).
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    events.emit("morpheme_summary", **summary)
    return summary
