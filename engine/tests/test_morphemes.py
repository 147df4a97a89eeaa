"""Kiwi's analysis of captions, by hand: the morphemes and content words below are what Kiwi 0.24.1 returns
(run once, read and checked by a Korean reader), and the stage's files round-trip exactly."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from wanlora_engine import morphemes as m
from wanlora_engine.__main__ import main

CROWD = "사람들이 광화문 앞에서 한복을 입고 걸어가는 모습이 보인다."
SEA = "아름다운 바다와 푸른 하늘을 바라보고 있다."
MIXED = "MBC 뉴스 1980년대 서울 거리"
ENGLISH = "Tourists walk in Seoul at night."
NUMBERS = "12345 !!!"


@pytest.fixture(scope="module")
def kiwi():
    return m.make_kiwi(1)


def analysed(kiwi, text: str) -> m.CaptionMorphemes:
    return next(m.analyse([text], kiwi))


def test_crowd_sentence_morphemes_and_content_words(kiwi):
    result = analysed(kiwi, CROWD)
    # 사람+들+이: the plural suffix and the particle are split off; 입/VV-R is the regular-conjugation
    # reading of 입다 (its tag suffix dropped); ᆫ다 is the ending; the full stop is not a morpheme.
    assert result.morphemes == [
        "사람/NNG", "들/XSN", "이/JKS", "광화문/NNP", "앞/NNG", "에서/JKB", "한복/NNG", "을/JKO", "입/VV", "고/EC",
        "걸어가/VV", "는/ETM", "모습/NNG", "이/JKS", "보이/VV", "ᆫ다/EF",
    ]
    assert result.content_words == ["사람", "광화문", "앞", "한복", "입다", "걸어가다", "모습", "보이다"]
    assert len(result.morphemes) == 16 and len(set(result.morphemes)) == 15  # 이/JKS twice
    assert result.script == "hangul"


def test_adjective_stems_take_da_and_the_auxiliary_is_not_a_content_word(kiwi):
    result = analysed(kiwi, SEA)
    assert result.morphemes == [
        "아름답/VA", "은/ETM", "바다/NNG", "와/JC", "푸르/VA", "ᆫ/ETM", "하늘/NNG", "을/JKO", "바라보/VV", "고/EC",
        "있/VX", "다/EF",
    ]
    assert result.content_words == ["아름답다", "바다", "푸르다", "하늘", "바라보다"]


def test_non_korean_captions_are_analysed_and_classified(kiwi):
    mixed = analysed(kiwi, MIXED)
    assert mixed.morphemes == ["mbc/SL", "뉴스/NNG", "1980/SN", "년대/NNB", "서울/NNP", "거리/NNG"]
    assert mixed.content_words == ["뉴스", "서울", "거리"]
    assert mixed.script == "mixed"
    english = analysed(kiwi, ENGLISH)
    # Kiwi keeps the full stop inside the last Latin token.
    assert english.morphemes == ["tourists/SL", "walk/SL", "in/SL", "seoul/SL", "at/SL", "night./SL"]
    assert english.content_words == [] and english.script == "other"
    numbers = analysed(kiwi, NUMBERS)
    assert numbers.morphemes == ["12345/SN"] and numbers.content_words == [] and numbers.script == "no_letters"
    empty = analysed(kiwi, "")
    assert empty.morphemes == [] and empty.content_words == [] and empty.script == "no_letters"


def test_word_unit_gives_the_same_analysis_on_these_sentences(kiwi):
    vocabulary = m.Vocabulary()
    texts = [CROWD, SEA, MIXED, ENGLISH, NUMBERS]
    records = [r for chunk in m.records_by_word(iter(texts), kiwi, vocabulary, 2) for r in chunk]
    types, words = list(vocabulary.morphemes), list(vocabulary.content_words)
    for text, (script, morphemes, content) in zip(texts, records):
        whole = analysed(kiwi, text)
        assert (script, [types[i] for i in morphemes], [words[i] for i in content]) == (
            whole.script, whole.morphemes, whole.content_words)


def test_definitions_without_kiwi():
    assert m.morpheme_type("입", "VV-R") == "입/VV"
    assert m.morpheme_type(".", "SF") is None and m.morpheme_type("😀", "W_EMOJI") is None
    assert m.content_word("푸르", "VA-I") == "푸르다" and m.content_word("있", "VX") is None
    assert [m.script_of(t) for t in ("한국", "한국 TV", "Café", "ÉTÉ 한", "日本", "3.5", "1920×1080")] == [
        "hangul", "mixed", "other", "mixed", "other", "no_letters", "no_letters"]


def read_output(path: Path) -> list[tuple[str, list[int], list[int]]]:
    data = path.read_bytes()
    assert data[:8] == m.OUTPUT_MAGIC
    (count,) = struct.unpack_from("<I", data, 8)
    offset, records = 12, []
    for _ in range(count):
        script, n = struct.unpack_from("<BI", data, offset)
        offset += 5
        morphemes = list(struct.unpack_from(f"<{n}I", data, offset))
        offset += 4 * n
        (c,) = struct.unpack_from("<I", data, offset)
        offset += 4
        words = list(struct.unpack_from(f"<{c}I", data, offset))
        offset += 4 * c
        records.append((m.SCRIPTS[script], morphemes, words))
    assert offset == len(data)
    return records


@pytest.mark.parametrize("unit", ["word", "caption"])
def test_stage_writes_ids_vocabulary_and_events(tmp_path, capsys, unit):
    captions = tmp_path / "captions.bin"
    m.write_captions(captions, [SEA, NUMBERS, ENGLISH, SEA])
    code = main(["morphemes", "--input", str(captions), "--output", str(tmp_path / "out.bin"),
                 "--vocabulary", str(tmp_path / "vocab.json"), "--workers", "2", "--batch", "3", "--unit", unit])
    assert code == 0
    vocabulary = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    records = read_output(tmp_path / "out.bin")
    assert [r[0] for r in records] == ["hangul", "no_letters", "other", "hangul"]
    assert [vocabulary["content_words"][i] for i in records[0][2]] == ["아름답다", "바다", "푸르다", "하늘", "바라보다"]
    assert records[3] == records[0]  # the same caption gets the same ids
    assert records[0][1] == list(range(12)) and records[1][1] == [12]
    assert vocabulary["morphemes"][12] == "12345/SN" and len(vocabulary["morphemes"]) == 12 + 1 + 6
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e.get("done")) for e in events] == [
        ("morpheme_progress", 0), ("morpheme_progress", 3), ("morpheme_progress", 4), ("morpheme_summary", None)]
    summary = events[-1]
    assert summary["captions"] == 4 and summary["morphemes"] == 12 + 1 + 6 + 12 and summary["content_words"] == 10
    assert summary["scripts"] == {"hangul": 2, "mixed": 0, "other": 1, "no_letters": 1}
    assert summary["morpheme_types"] == 19 and summary["content_word_types"] == 5 and summary["unit"] == unit


def test_stage_rejects_a_foreign_file(tmp_path, capsys):
    bad = tmp_path / "captions.bin"
    bad.write_bytes(b"caption,path\n")
    code = main(["morphemes", "--input", str(bad), "--output", str(tmp_path / "out.bin"),
                 "--vocabulary", str(tmp_path / "vocab.json")])
    assert code == 2
    event = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert event["event"] == "error" and event["code"] == "config_invalid" and "WLCAPS01" in event["problem"]


def test_decomposed_hangul_is_composed_before_analysis(tmp_path):
    import unicodedata

    path = tmp_path / "captions.bin"
    m.write_captions(path, [unicodedata.normalize("NFD", SEA)])
    count, captions = m.read_captions(open(path, "rb"), str(path))
    assert count == 1 and list(captions) == [SEA]


def test_stage_reports_a_cut_file(tmp_path, capsys):
    cut = tmp_path / "captions.bin"
    m.write_captions(cut, [SEA, CROWD])
    cut.write_bytes(cut.read_bytes()[:-5])
    code = main(["morphemes", "--input", str(cut), "--output", str(tmp_path / "out.bin"),
                 "--vocabulary", str(tmp_path / "vocab.json"), "--workers", "1"])
    assert code == 2
    event = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert event["event"] == "error" and "caption 1 is cut short" in event["problem"]
