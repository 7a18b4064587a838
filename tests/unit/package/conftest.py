"""A tiny bundle spec with real fitted models (4 items, 3 users), written on demand.

Items: a-laptop 笔记本电脑 (electronics), b-mouse (electronics), c-tea 绿茶 (grocery),
d-cup (home). Users u1: laptop, mouse; u2: mouse, tea; u3: nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.retrieval import BM25Search, ItemKNNRecommender, PopularityRecommender

SpecFactory = Callable[..., BundleSpec]
BundleFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fitted popularity, item_knn and bm25 folders (read-only)."""
    root = tmp_path_factory.mktemp("package-models")
    histories = _histories()
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(root / "popularity")
    knn = ItemKNNRecommender(neighbours=5, num_threads=1)
    knn.fit(histories)
    knn.save(root / "item_knn")
    bm25 = BM25Search(field_weights={"title": 1.0})
    bm25.fit({"title": ["ThinkPad 笔记本电脑", "Wireless mouse", "绿茶 green tea", "Mug cup"]})
    bm25.save(root / "bm25")
    return {"popularity": root / "popularity", "item_knn": root / "item_knn", "bm25": root / "bm25"}


def _histories() -> sp.csr_matrix:
    return sp.csr_matrix(
        [[3.0, 1.0, 0.0, 0.0], [0.0, 2.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype="float32"
    )


@pytest.fixture
def make_spec(model_folders: dict[str, Path]) -> SpecFactory:
    """`make_spec(**changes)`: the tiny spec, with fields replaced."""

    def make(**changes: object) -> BundleSpec:
        values: dict[str, object] = {
            "items": pl.DataFrame(
                {
                    "raw_item_id": ["a-laptop", "b-mouse", "c-tea", "d-cup"],
                    "title": ["ThinkPad 笔记本电脑", "Wireless mouse", "绿茶 green tea", "Mug cup"],
                    "category": ["electronics", "electronics", "grocery", "home"],
                    "price": [5999.0, 99.0, 30.0, 12.5],
                }
            ),
            "users": pl.DataFrame({"raw_user_id": ["u1", "u2", "u3"]}),
            "histories": _histories(),
            "components": {
                "recommender": ("item_knn", model_folders["item_knn"]),
                "popular": ("popularity", model_folders["popularity"]),
                "similar": ("item_knn", model_folders["item_knn"]),
                "search": ("bm25", model_folders["bm25"]),
            },
            "metrics": {"item_knn": {"ndcg@10": 0.4, "recall@10": 0.5}, "selected": "item_knn"},
            "data_fingerprint": "f" * 64,
            "lineage": {"run_id": "run-1", "config_hash": "c" * 64},
            "project": "tiny",
        }
        values.update(changes)
        return BundleSpec(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_bundle(make_spec: SpecFactory, tmp_path: Path) -> BundleFactory:
    """`make_bundle(name="bundle", **spec_changes)`: write a bundle under tmp_path."""

    def make(name: str = "bundle", **changes: object) -> Path:
        out = tmp_path / name
        out.mkdir()
        write_bundle(make_spec(**changes), out)
        return out

    return make
