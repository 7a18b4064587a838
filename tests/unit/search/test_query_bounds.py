"""Bounded work per catalog row and per query in lexical search (issue 14, point 2).

One catalog row with a 1 MiB title stalled training in the spell corrector, one
4,000-letter token took 18.8 GB, and a 512-character query cost 330-690 ms. The checks
count the work (tokens, delete strings looked up), never the time.
"""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.text import spell
from shelfwise.text.tokenize import MAX_QUERY_TOKENS, MAX_TOKEN_CHARS

TITLES = ["Red summer dress", "Blue denim jeans", "Feather pillow", "Running shoes"]


def _index(titles: list[str | None]) -> BM25Search:
    index = BM25Search(field_weights={"title": 1.0})
    index.fit({"title": titles})
    return index


@pytest.fixture(scope="module")
def with_junk_rows() -> BM25Search:
    """The catalog plus a 1 MiB title and a title holding a 4,000-letter token."""
    return _index([*TITLES, "Pillow " + "q" * 2**20, "z" * 4_000 + " shoes"])


def test_junk_rows_index_bounded_tokens(with_junk_rows: BM25Search) -> None:
    speller = with_junk_rows._speller
    assert speller is not None
    assert max(len(token) for token in speller.frequencies) == MAX_TOKEN_CHARS
    # only the ordinary words have delete-neighbourhoods, not the 64-letter cuts
    ordinary = _index(TITLES)._speller
    assert ordinary is not None
    assert speller.index_size == ordinary.index_size


def test_search_results_are_unchanged_for_ordinary_queries(with_junk_rows: BM25Search) -> None:
    plain = _index(TITLES)
    for query in ("summer dress", "pilow", "runing shoes", "jeans"):
        assert plain.query_tokens(query) == with_junk_rows.query_tokens(query)
        assert int(np.argmax(plain.score(query))) == int(
            np.argmax(with_junk_rows.score(query)[: len(TITLES)])
        )


def test_a_long_query_token_is_read_once_and_never_spelled(
    with_junk_rows: BM25Search, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[int] = []
    neighbourhood = spell.SpellCorrector.neighbourhood

    def counting(self: spell.SpellCorrector, token: str) -> set[str]:
        found = neighbourhood(self, token)
        looked_up.append(len(found))
        return found

    monkeypatch.setattr(spell.SpellCorrector, "neighbourhood", counting)
    tokens = with_junk_rows.query_tokens("z" * 4_000)
    assert tokens == ["z" * MAX_TOKEN_CHARS]
    assert sum(looked_up) == 0  # no delete-neighbourhood of a 64-letter token
    scores = with_junk_rows.score("z" * 512)
    assert int(np.argmax(scores)) == len(TITLES) + 1  # it still finds its own row


def test_a_long_query_is_cut_to_its_first_tokens(
    with_junk_rows: BM25Search, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    neighbourhood = spell.SpellCorrector.neighbourhood

    def counting(self: spell.SpellCorrector, token: str) -> set[str]:
        looked_up.append(token)
        return neighbourhood(self, token)

    monkeypatch.setattr(spell.SpellCorrector, "neighbourhood", counting)
    query = " ".join(["pilow"] * 100) + " " + "笔记本电脑" * 100  # 1,100 characters
    tokens = with_junk_rows.query_tokens(query)
    # its first 32 tokens, then their corrections
    assert tokens == ["pilow"] * MAX_QUERY_TOKENS + ["pillow"] * MAX_QUERY_TOKENS
    assert len(looked_up) <= MAX_QUERY_TOKENS
    assert int(np.argmax(with_junk_rows.score(query))) == 2
