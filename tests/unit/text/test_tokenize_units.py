"""Numbers with units, dimensions and model numbers in both analyzers (issue 16)."""

from __future__ import annotations

import pytest

from shelfwise.text.tokenize import (
    ANALYZER_VERSION,
    MAX_TOKEN_CHARS,
    bound_query,
    numeric_units,
    tokenize,
)


def shared(left: str, right: str) -> set[str]:
    return set(tokenize(left)) & set(tokenize(right))


@pytest.mark.parametrize(
    ("catalog", "query", "unit"),
    [
        ("Mueller 1/2 in. x 10 ft. Copper Type M Pipe", "1/2 inch copper pipe", "1/2in"),
        ('SharkBite 1/2" Brass Push-to-Connect Coupling', "1/2 in. coupling", "1/2in"),
        ("½ in. Ball Valve", "1/2 inch ball valve", "1/2in"),
        ("Charlotte Pipe 1-1/2 in. PVC DWV Pipe", "1½ inch pvc", "1-1/2in"),
        ("Charlotte Pipe 1-1/2 in. PVC DWV Pipe", "1 1/2 in pvc", "1-1/2in"),
        ("Ryobi ONE+ 12-Volt Lithium-Ion Battery", "12 volt battery", "12v"),
        ("DEWALT 20V MAX Cordless Drill", "20 volt drill", "20v"),
        ("Southwire 250 ft. 14-Gauge Solid THHN Wire", "14 ga wire", "14ga"),
        ("Southwire 12 AWG Stranded Copper Wire", "12 gauge copper wire", "12ga"),
        ("Philips 60-Watt Equivalent A19 LED Light Bulb", "60 watt led bulb", "60w"),
        ("Eaton 20 Amp Single-Pole Circuit Breaker", "20a breaker", "20a"),
        ("Werner 6 ft. Fiberglass Step Ladder", "6' step ladder", "6ft"),
        ("M6 x 20 mm Hex Bolt", "20mm hex bolt", "20mm"),
    ],
)
def test_one_size_written_two_ways_shares_its_unit_token(
    catalog: str, query: str, unit: str
) -> None:
    assert unit in shared(catalog, query)
    assert unit in numeric_units(catalog) & numeric_units(query)


def test_the_issue_examples_tokenize_alike() -> None:
    assert tokenize("1/2 in. copper") == tokenize("1/2 inch copper") == ["1/2", "1/2in", "copper"]
    assert tokenize("12 volt") == tokenize("12V") == tokenize("12-Volt") == ["12", "12v"]


def test_dimensions_give_each_side_and_the_joined_size() -> None:
    assert tokenize("2x4 Lumber") == ["2", "4", "2x4", "lumber"]
    assert "2x4" in shared("Premium 2 x 4 x 8 ft. Stud", "2x4 stud")
    tokens = tokenize("Rug 10 x 20 cm")
    assert {"10", "20", "10x20", "10x20cm", "10cm", "20cm"} <= set(tokens)
    assert "10x20" in shared("Rug 10 × 20 cm", "10x20 rug")


@pytest.mark.parametrize(
    ("catalog", "query", "joined"),
    [
        ("ASUS GeForce RTX-4090 24GB", "rtx 4090", None),
        ("ASUS GeForce RTX-4090 24GB", "rtx4090", "rtx4090"),
        ("WD-40 Multi-Use Product 11 oz.", "wd40", "wd40"),
        ("Southwire 25 ft. 10-3 Romex SIMpull Wire", "10-3 wire", "10-3"),
    ],
)
def test_model_numbers_match_with_or_without_the_hyphen(
    catalog: str, query: str, joined: str | None
) -> None:
    both = shared(catalog, query)
    if joined is None:  # written apart: the parts still match
        assert {"rtx", "4090"} <= both
    else:
        assert joined in both


def test_wire_notation_is_not_a_number() -> None:
    assert "10-3" in tokenize("10-3 wire")
    assert "103" not in tokenize("10-3 wire")


@pytest.mark.parametrize(
    ("chinese", "english", "unit"),
    [
        ("12伏 锂电池", "12V lithium battery", "12v"),
        ("超威 12伏电池", "12 volt battery", "12v"),
        ("1/2英寸 铜管", '1/2" copper pipe', "1/2in"),
        ("60瓦 灯泡", "60 watt bulb", "60w"),
        ("5米 网线", "5 m cable", "5m"),
        ("10毫米 钻头", "10mm drill bit", "10mm"),
    ],
)
def test_chinese_units_meet_english_ones(chinese: str, english: str, unit: str) -> None:
    assert unit in shared(chinese, english)
    tokens = tokenize(chinese)
    assert any("\u4e00" <= char <= "\u9fff" for token in tokens for char in token)  # words kept


def test_chinese_words_after_a_unit_are_still_cut() -> None:
    assert {"12", "12v", "电池"} <= set(tokenize("12伏电池"))


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("2 in 1 laptop", "2in"),  # not two inches
        ("buy 2 a pack", "2a"),  # a spaced "a" is the article
        ("12 voltage regulator", "12v"),  # a unit ends its word
        ("4090ti card", "4090"),  # a model number stays one token
    ],
)
def test_no_unit_where_there_is_none(text: str, absent: str) -> None:
    assert absent not in tokenize(text)


def test_plain_numbers_stay_numbers() -> None:
    assert tokenize("pack of 24") == ["pack", "24"]
    assert tokenize("version 2.5") == ["version", "2.5"]
    assert numeric_units("pack of 24") == set()


def test_numeric_units_lists_only_measured_tokens() -> None:
    assert numeric_units("Romex 10-3 wire, 1/2 in. x 10 ft., 12-Volt") == {
        "10-3",
        "1/2in",
        "10ft",
        "12v",
    }
    assert numeric_units("") == set()


def test_version_one_is_the_analyzer_before_units() -> None:
    assert ANALYZER_VERSION == 2
    assert tokenize("1/2 in. copper", version=1) == ["1", "2", "copper"]
    assert tokenize("12V 电池", version=1) == ["12v", "电池"]
    with pytest.raises(ValueError, match="unknown analyzer version 7"):
        tokenize("x", version=7)


def test_unit_tokens_keep_the_length_cap() -> None:
    long_number = "9" * 200
    tokens = tokenize(f"{long_number} volt {long_number}x{long_number}")
    assert tokens
    assert max(len(token) for token in tokens) <= MAX_TOKEN_CHARS


@pytest.mark.parametrize(
    "repeated", ["1/2 in. copper ", "12 volt battery ", "rug 10 x 20 cm ", "12伏 电池 ", "2x4 "]
)
def test_queries_with_units_stay_within_the_query_bound(repeated: str) -> None:
    bounded = bound_query(repeated * 40)
    assert len(bounded) <= 200
    assert len(tokenize(bounded)) <= 32
    assert bound_query(repeated.strip()) == repeated.strip()  # short queries: whole
