"""Spelling correction: exact against brute force, Latin only, persisted as JSON."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest

from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.text.spell import (
    MAX_CORRECTABLE_LENGTH,
    MAX_INDEX_ENTRIES,
    SpellCorrector,
    is_correctable,
    osa_distance,
)


def reference_osa(left: str, right: str) -> int:
    """Optimal string alignment distance by the textbook full-matrix recurrence."""
    rows, cols = len(left) + 1, len(right) + 1
    table = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        table[i][0] = i
    for j in range(cols):
        table[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost = 0 if left[i - 1] == right[j - 1] else 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and left[i - 1] == right[j - 2] and left[i - 2] == right[j - 1]:
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
    return table[-1][-1]


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("dress", "dress", 0),
        ("dresss", "dress", 1),  # insertion
        ("laptpo", "laptop", 1),  # transposition
        ("lapyop", "laptop", 1),  # substitution
        ("ca", "abc", 3),  # OSA, not unrestricted Damerau (which gives 2)
        ("", "abc", 3),
    ],
)
def test_osa_distance_known_pairs(left: str, right: str, expected: int) -> None:
    assert osa_distance(left, right, limit=5) == expected


def test_osa_distance_matches_reference_and_caps_at_limit() -> None:
    rng = np.random.default_rng(0)
    letters = list("abcde")
    for _ in range(400):
        left = "".join(rng.choice(letters, size=rng.integers(0, 7)))
        right = "".join(rng.choice(letters, size=rng.integers(0, 7)))
        exact = reference_osa(left, right)
        for limit in (1, 2, 8):
            assert osa_distance(left, right, limit) == min(exact, limit + 1), (left, right)


def brute_force_correct(speller: SpellCorrector, token: str) -> str | None:
    """The specification, checked over the whole vocabulary."""
    limit = speller.max_distance(token)
    if token in speller or limit == 0:
        return None
    scored = [
        (reference_osa(token, word), -count, word)
        for word, count in speller.frequencies.items()
        if is_correctable(word)
    ]
    best = min((entry for entry in scored if entry[0] <= limit), default=None)
    return None if best is None else best[2]


def test_delete_index_finds_what_brute_force_finds() -> None:
    rng = np.random.default_rng(7)
    letters = list("abcdef")
    vocabulary = {
        "".join(rng.choice(letters, size=rng.integers(3, 11))): int(rng.integers(1, 20))
        for _ in range(300)
    }
    speller = SpellCorrector(vocabulary, min_token_length=3, long_token_length=8)
    words = list(vocabulary)
    queries = []
    for _ in range(400):  # vocabulary words with 1-3 random edits
        word = list(words[int(rng.integers(len(words)))])
        for _ in range(int(rng.integers(1, 4))):
            position = int(rng.integers(len(word)))
            kind = int(rng.integers(3))
            if kind == 0:
                word.insert(position, str(rng.choice(letters)))
            elif kind == 1 and len(word) > 1:
                del word[position]
            else:
                word[position] = str(rng.choice(letters))
        queries.append("".join(word))
    corrected = 0
    for query in queries:
        expected = brute_force_correct(speller, query)
        assert speller.correct(query) == expected, query
        corrected += expected is not None
    assert corrected > 100  # the check is not vacuous


def test_most_frequent_of_the_closest_wins() -> None:
    speller = SpellCorrector({"dress": 10, "press": 50, "dresser": 99})
    assert speller.correct("dresss") == "dress"  # 1 edit beats the more frequent 2-edit word
    assert speller.correct("tress") == "press"  # both 1 edit away: the more frequent one
    assert SpellCorrector({"dress": 5, "press": 5}).correct("tress") == "dress"  # then a-z


def test_long_tokens_may_be_two_edits_away() -> None:
    speller = SpellCorrector({"headphone": 3, "cup": 1})
    assert speller.max_distance("hedphnoe") == 2
    assert speller.correct("hedphnoe") == "headphone"  # deletion + transposition
    assert speller.max_distance("cpu") == 1
    assert speller.correct("cpu") == "cup"
    assert speller.correct("cxx") is None  # 2 edits on a short token: no correction


def test_only_unknown_latin_tokens_are_corrected() -> None:
    speller = SpellCorrector({"dress": 3, "128gb": 3, "连衣裙": 3, "café": 2, "dres": 1})
    assert speller.correct("dress") is None  # known
    assert speller.correct("dres") is None  # known, even though a frequent word is close
    assert speller.correct("256gb") is None  # digits: never corrected
    assert speller.correct("128gc") is None
    assert speller.correct("连衣群") is None  # CJK: left alone
    assert speller.correct("cafe") == "café"  # accented Latin is Latin
    assert speller.correct("ab") is None  # shorter than min_token_length
    assert is_correctable("naïve")
    assert not is_correctable("iphone15")
    assert not is_correctable("Dress")  # tokens are lower-case by now


def test_corrections_of_a_token_list() -> None:
    speller = SpellCorrector({"red": 4, "dress": 3, "laptop": 1})
    assert speller.corrections(["red", "dresss", "laptpo", "dresss", "zzzzzz"]) == {
        "dresss": "dress",
        "laptpo": "laptop",
    }


def test_frequencies_count_lists_not_repeats() -> None:
    speller = SpellCorrector.from_token_lists([["cup", "cup", "cup"], ["cap"], ["cap"]])
    assert speller.frequencies == {"cap": 2, "cup": 1}
    assert speller.correct("cop") == "cap"


def test_save_load_round_trip(tmp_path: Path) -> None:
    speller = SpellCorrector({"dress": 3, "laptop": 2, "连衣裙": 1}, long_token_length=6)
    speller.save(tmp_path / "spell.json")
    loaded = SpellCorrector.load(tmp_path / "spell.json")
    assert loaded.frequencies == speller.frequencies
    assert loaded.long_token_length == 6
    assert loaded.correct("laptpo") == "laptop"
    spec = json.loads((tmp_path / "spell.json").read_text(encoding="utf-8"))
    assert spec["tokens"] == sorted(spec["tokens"])


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="missing"):
        SpellCorrector.load(tmp_path / "spell.json")
    (tmp_path / "spell.json").write_text('{"format": "other"}', encoding="utf-8")
    with pytest.raises(ArtifactError, match="unreadable"):
        SpellCorrector.load(tmp_path / "spell.json")


def test_invalid_lengths() -> None:
    with pytest.raises(ConfigError, match="min_token_length"):
        SpellCorrector({}, min_token_length=5, long_token_length=4)


def test_empty_vocabulary_corrects_nothing() -> None:
    speller = SpellCorrector({})
    assert len(speller) == 0
    assert speller.correct(string.ascii_lowercase[:6]) is None


# -- bounded work (issue 14: a 1 MiB title sat in `_deletes` for over 20 minutes and
# a 4,000-letter token took 18.8 GB) -------------------------------------------------


def test_over_long_tokens_get_no_delete_neighbourhood() -> None:
    long_token = "abcdefghij" * 400  # 4,000 letters
    speller = SpellCorrector({long_token: 3, "dress": 2})
    assert speller.index_size == SpellCorrector({"dress": 2}).index_size  # only "dress"
    assert speller.neighbourhood(long_token[:-1] + "x") == set()
    assert speller.correct(long_token[:-1] + "x") is None
    assert speller.max_distance("a" * (MAX_CORRECTABLE_LENGTH + 1)) == 0
    assert long_token in speller  # still a known word


def test_a_query_token_looks_up_a_bounded_neighbourhood() -> None:
    speller = SpellCorrector({"waterproofing": 1})
    longest = "abcdefghijklmnopqrstuvwx"  # MAX_CORRECTABLE_LENGTH distinct letters
    assert len(longest) == MAX_CORRECTABLE_LENGTH
    n = MAX_CORRECTABLE_LENGTH
    assert len(speller.neighbourhood(longest)) == 1 + n + n * (n - 1) // 2
    assert speller.neighbourhood("waterproofing") == set()  # known: nothing to look up
    assert speller.correct("watreproofing") == "waterproofing"


def test_the_index_has_a_budget_and_the_most_frequent_tokens_get_it() -> None:
    vocabulary = {f"{letter}{'x' * 6}": 1 for letter in string.ascii_lowercase}
    vocabulary["pillow"] = 100
    full = SpellCorrector(vocabulary)
    budget = SpellCorrector(vocabulary, max_index_entries=60)
    assert budget.index_size <= 60 < full.index_size
    assert budget.unindexed_tokens > 0
    assert full.unindexed_tokens == 0
    assert budget.correct("pilow") == "pillow"  # the most frequent token was indexed
    assert budget.correct("zxxxxxx") is None  # known word
    assert "qxxxxxx" in budget  # unindexed tokens are still known


def test_a_one_mebibyte_title_builds_a_small_index() -> None:
    from shelfwise.text.tokenize import tokenize

    title = "Pillow case " + "z" * (2**20)  # one catalog row with a 1 MiB title
    speller = SpellCorrector.from_token_lists([tokenize(title), tokenize("pillow dress")])
    assert speller.index_size < 100  # "pillow", "case", "dress" and their deletes
    assert speller.correct("pilow") == "pillow"


def test_limits_are_saved_and_checked(tmp_path: Path) -> None:
    speller = SpellCorrector({"dress": 2}, max_token_length=12, max_index_entries=1000)
    speller.save(tmp_path / "spell.json")
    loaded = SpellCorrector.load(tmp_path / "spell.json")
    assert (loaded.max_token_length, loaded.max_index_entries) == (12, 1000)
    spec = json.loads((tmp_path / "spell.json").read_text(encoding="utf-8"))
    del spec["max_token_length"], spec["max_index_entries"]  # a file from before the limits
    (tmp_path / "old.json").write_text(json.dumps(spec), encoding="utf-8")
    old = SpellCorrector.load(tmp_path / "old.json")
    assert (old.max_token_length, old.max_index_entries) == (
        MAX_CORRECTABLE_LENGTH,
        MAX_INDEX_ENTRIES,
    )
    with pytest.raises(ConfigError, match="max_token_length"):
        SpellCorrector({}, long_token_length=8, max_token_length=6)
    with pytest.raises(ConfigError, match="max_index_entries must be >= 0, got -1"):
        SpellCorrector({}, max_index_entries=-1)
