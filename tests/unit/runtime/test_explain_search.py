"""Search explanations over a hybrid index (BM25 + dense): matched terms are analysed
query terms with their BM25 share, the dense reason is the index's own cosine."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.dense import DenseSearch
from shelfwise.runtime.catalog import Catalog
from shelfwise.runtime.explain import Explainer
from shelfwise.runtime.histories import Histories
from shelfwise.runtime.popular import PopularFill
from shelfwise.runtime.similar_items import SimilarJob
from shelfwise.search.features import SearchItemTable
from shelfwise.search.hybrid import HybridSearch, item_frame

TITLES = [
    "Lenovo ThinkPad 15 inch laptop",
    "华为 笔记本电脑 MateBook",
    "USB-C laptop charger",
    "Red summer dress 红色连衣裙",
]
ITEMS = pl.DataFrame(
    {
        "raw_item_id": ["thinkpad", "matebook", "charger", "dress"],
        "title": TITLES,
        "brand": ["Lenovo", "Huawei", "Anker", "Zara"],
        "category": ["laptops", "laptops", "accessories", "dresses"],
        "price": [5999.0, 6999.0, 149.0, 199.0],
        "in_stock": [True] * 4,
    }
)


class _WordEncoder:
    """A deterministic stand-in for a sentence encoder (hashed words, 16 dimensions):
    what matters here is that the reason is the index's own cosine, not its quality."""

    name, model_id, dim = "words", "words-v1", 16

    def encode_queries(self, texts: Any) -> np.ndarray:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in text.lower().split():
                row[sum(word.encode()) % self.dim] += 1.0
        return rows

    encode_passages = encode_queries


@pytest.fixture(scope="module")
def parts() -> tuple[Explainer, HybridSearch, Catalog]:
    fields = {name: ITEMS[name].to_list() for name in ("title", "brand", "category")}
    lexical = BM25Search(field_weights={"title": 2.0, "brand": 1.0, "category": 1.0})
    lexical.fit(fields)
    dense = DenseSearch(encoder=_WordEncoder(), fields=["title", "brand", "category"])
    dense.fit(fields)
    popularity = np.array([3, 2, 1, 0], dtype=np.int64)
    frame = item_frame(ITEMS.drop("raw_item_id", "in_stock"), popularity)
    hybrid = HybridSearch(
        lexical=lexical,
        dense=dense,
        table=SearchItemTable.from_frame(frame, popularity),
        items=frame,
        depth=4,
        candidates=4,
    )
    catalog = Catalog(ITEMS)
    explainer = Explainer(
        catalog=catalog,
        histories=Histories({}, sp.csr_matrix((0, 4), dtype=np.float32), None),
        recommender=None,
        reranker=None,
        search_index=hybrid,
        similar=SimilarJob(
            catalog=catalog, model=None, popular=PopularFill(catalog, None), version="t"
        ),
    )
    return explainer, hybrid, catalog


@pytest.mark.parametrize("query", ["thinkpad laptop", "笔记本电脑", "laptop charger"])
def test_hybrid_reasons_come_from_both_retrievers(
    parts: tuple[Explainer, HybridSearch, Catalog], query: str
) -> None:
    explainer, hybrid, catalog = parts
    hits = hybrid.search(query, 3)
    items = [catalog.item(int(i), float(s)) for i, s in zip(hits.items, hits.scores, strict=True)]
    explained = explainer.search(query, items)
    analysed = set(hybrid.lexical.query_tokens(query))
    cosines = hybrid.dense.vectors @ hybrid.dense.encode_query(query)
    for item, explanation in zip(hits.items, explained, strict=True):
        for reason in explanation.reasons:
            if reason["kind"] == "matched_terms":
                assert set(reason["terms"]) <= analysed
                field = reason["field"]
                alone = hybrid.lexical.field_scores(query)[field][int(item)]
                assert reason["score"] == pytest.approx(float(alone), rel=1e-3)
            if reason["kind"] == "dense_similarity":
                assert reason["score"] == pytest.approx(float(cosines[int(item)]), abs=1e-3)
    kinds = {reason["kind"] for explanation in explained for reason in explanation.reasons}
    assert {"matched_terms", "dense_similarity"} <= kinds
    assert explained[0].text
