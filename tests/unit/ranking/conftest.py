"""Inputs of the ranking stage, built once per session on the tiny generated shop.

The features folder comes from the pipeline itself (`until="features"`); the retrieval
and evaluate folders are written here (popularity + item_knn fitted on train, item_knn
selected), so these tests do not depend on which retrievers the retrieval stage fits.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.pipeline import run_pipeline
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender

if TYPE_CHECKING:
    from shelfwise.sample import ShopSummary


@dataclass(frozen=True)
class RankingInputs:
    """Upstream folders of the ranking stage and the config that made them."""

    config: ShelfwiseConfig
    run_dir: Path
    features: Path
    retrieval: Path
    evaluate: Path

    def context(self, out: Path, config: ShelfwiseConfig | None = None) -> StageContext:
        """A stage context writing into `out`."""
        out.mkdir(parents=True, exist_ok=True)
        return StageContext(
            config=config or self.config,
            run_dir=self.run_dir,
            inputs={
                "features": self.features,
                "retrieval": self.retrieval,
                "evaluate": self.evaluate,
            },
            out=out,
        )


def build_inputs(root: Path, config: ShelfwiseConfig, selected: str = "item_knn") -> RankingInputs:
    """Features from the pipeline, then retrievers and a metrics.json written here."""
    outcome = run_pipeline(config, until="features", use_cache=False)
    features = outcome.run_dir / "features"
    retrieval = root / "retrieval"
    train = read_csr(features / "train.npz")
    popularity = PopularityRecommender()
    popularity.fit(train)
    popularity.save(retrieval / "popularity")
    knn = ItemKNNRecommender(neighbours=50, num_threads=1)
    knn.fit(train)
    knn.save(retrieval / "item_knn")
    (retrieval / "models.json").write_text(
        json.dumps(
            {
                "popularity": {"kind": "recommender", "fit_s": 0.0, "params": {}},
                "item_knn": {"kind": "recommender", "fit_s": 0.0, "params": {}},
            }
        )
    )
    evaluate = root / "evaluate"
    evaluate.mkdir(parents=True)
    (evaluate / "metrics.json").write_text(
        json.dumps({"selected": {"recommender": selected, "primary_metric": "ndcg@10"}})
    )
    return RankingInputs(config, outcome.run_dir, features, retrieval, evaluate)


EMBEDDING_CACHE = Path(tempfile.gettempdir()) / "shelfwise-test-embeddings"  # as in tests/conftest


def shop_config(shop: ShopSummary, home: Path, **overrides: object) -> ShelfwiseConfig:
    """A config over `shop` with its state in `home` (as the root conftest builds it)."""
    values: dict[str, object] = {
        "project": "tiny-shop",
        "home": str(home),
        "data.catalog.path": str(shop.catalog_path),
        "data.events.path": str(shop.events_path),
        "data.queries.path": str(shop.queries_path),
        "models.dense.cache_dir": str(EMBEDDING_CACHE),
    }
    values.update(overrides)
    return load_config(None, environ={}, overrides=values)


@pytest.fixture(scope="session")
def ranking_inputs(
    tiny_shop: ShopSummary, tmp_path_factory: pytest.TempPathFactory
) -> RankingInputs:
    """Upstream folders over the tiny shop (read-only)."""
    root = tmp_path_factory.mktemp("ranking-inputs")
    return build_inputs(root, shop_config(tiny_shop, root / "state"))


@dataclass(frozen=True)
class StageRun:
    """One finished ranking stage run."""

    inputs: RankingInputs
    out: Path
    result: StageResult

    @property
    def report(self) -> dict[str, object]:
        """ranking.json."""
        loaded: dict[str, object] = json.loads((self.out / "ranking.json").read_text())
        return loaded


@pytest.fixture(scope="session")
def stage_run(ranking_inputs: RankingInputs, tmp_path_factory: pytest.TempPathFactory) -> StageRun:
    """The ranking stage run once on the tiny shop (read-only)."""
    from shelfwise.ranking.stage import run

    out = tmp_path_factory.mktemp("ranking-out")
    return StageRun(ranking_inputs, out, run(ranking_inputs.context(out)))


# --- a synthetic shop whose targets follow a known rule ------------------------------

N_CATEGORIES = 6
ITEMS_PER_CATEGORY = 20
DAY = 86_400


def write_rule_features(
    folder: Path, *, users: int = 400, seed: int = 3, test_seed: int = 4
) -> None:
    """A features folder where each user's targets come from their favourite category.

    User u's favourite category is u % 6. Train history: 6 items of that category and
    3 random ones (days 0-60). Valid targets (days 61-70) and test targets (71-80): 2
    unseen items each, from the favourite category with probability 0.9. `test_seed`
    draws only the test events, so two folders differing in it share train and valid.
    """
    from shelfwise._internal.artifacts import write_csr, write_parquet

    n_items = N_CATEGORIES * ITEMS_PER_CATEGORY
    rng = np.random.default_rng(seed)
    category = np.repeat(np.arange(N_CATEGORIES), ITEMS_PER_CATEGORY)
    items = pl.DataFrame(
        {
            "item_index": np.arange(n_items, dtype=np.int64),
            "raw_item_id": [f"item-{i}" for i in range(n_items)],
            "category": [f"cat-{c}" for c in category],
            "brand": [f"brand-{i % 15}" for i in range(n_items)],
            "price": np.round(rng.lognormal(4.0, 1.0, n_items), 2),
        }
    )
    rows: list[tuple[int, int, int, str]] = []

    def draw(generator: np.random.Generator, user: int, seen: set[int], count: int) -> list[int]:
        favourite = np.flatnonzero(category == user % N_CATEGORIES)
        chosen: list[int] = []
        while len(chosen) < count:
            pool = favourite if generator.random() < 0.9 else np.arange(n_items)
            item = int(generator.choice(pool))
            if item not in seen:
                seen.add(item)
                chosen.append(item)
        return chosen

    test_rng = np.random.default_rng(test_seed)
    for user in range(users):
        seen: set[int] = set()
        favourite = np.flatnonzero(category == user % N_CATEGORIES)
        history = [int(i) for i in rng.choice(favourite, 6, replace=False)]
        seen.update(history)
        others = [int(i) for i in rng.choice(np.setdiff1d(np.arange(n_items), history), 3)]
        seen.update(others)
        rows.extend((user, i, int(rng.integers(0, 60 * DAY)), "train") for i in history + others)
        valid = draw(rng, user, seen, 2)
        rows.extend((user, i, int(rng.integers(61 * DAY, 70 * DAY)), "valid") for i in valid)
        test = draw(test_rng, user, seen, 2)
        rows.extend((user, i, int(test_rng.integers(71 * DAY, 80 * DAY)), "test") for i in test)
    interactions = pl.DataFrame(
        rows, schema=["user_index", "item_index", "timestamp", "split"], orient="row"
    ).with_columns(
        pl.col("user_index").cast(pl.Int64),
        pl.col("item_index").cast(pl.Int64),
        pl.lit("view").alias("event_type"),
        pl.lit(1.0, dtype=pl.Float32).alias("weight"),
    )
    interactions = interactions.select(
        "user_index", "item_index", "event_type", "timestamp", "weight", "split"
    ).sort("user_index", "timestamp")

    def matrix(splits: tuple[str, ...]) -> sp.csr_matrix:
        part = interactions.filter(pl.col("split").is_in(list(splits)))
        return sp.csr_matrix(
            (
                np.ones(part.height, dtype=np.float32),
                (part["user_index"].to_numpy(), part["item_index"].to_numpy()),
            ),
            shape=(users, n_items),
        )

    folder.mkdir(parents=True, exist_ok=True)
    write_parquet(items, folder / "items.parquet")
    write_parquet(
        pl.DataFrame(
            {"user_index": np.arange(users), "raw_user_id": [f"u{u}" for u in range(users)]}
        ),
        folder / "users.parquet",
    )
    write_parquet(interactions, folder / "interactions.parquet")
    write_csr(folder / "train.npz", matrix(("train",)))
    write_csr(folder / "train_valid.npz", matrix(("train", "valid")))
    write_csr(folder / "full.npz", matrix(("train", "valid", "test")))
    write_csr(folder / "valid_targets.npz", matrix(("valid",)))
    write_csr(folder / "test_targets.npz", matrix(("test",)))


def build_rule_inputs(root: Path, *, test_seed: int = 4, **overrides: object) -> RankingInputs:
    """The synthetic shop's folders, with popularity as the selected retriever."""
    features = root / "features"
    write_rule_features(features, test_seed=test_seed)
    retrieval = root / "retrieval"
    popularity = PopularityRecommender()
    popularity.fit(read_csr(features / "train.npz"))
    popularity.save(retrieval / "popularity")
    (retrieval / "models.json").write_text(
        json.dumps({"popularity": {"kind": "recommender", "fit_s": 0.0, "params": {}}})
    )
    evaluate = root / "evaluate"
    evaluate.mkdir(parents=True)
    (evaluate / "metrics.json").write_text(
        json.dumps({"selected": {"recommender": "popularity", "primary_metric": "ndcg@10"}})
    )
    values: dict[str, object] = {"home": str(root / "state"), "ranking.candidates": 50}
    values.update(overrides)
    config = load_config(None, environ={}, overrides=values)
    return RankingInputs(config, root, features, retrieval, evaluate)


@pytest.fixture(scope="session")
def rule_run(tmp_path_factory: pytest.TempPathFactory) -> StageRun:
    """The ranking stage run once on the synthetic known-rule shop (read-only)."""
    from shelfwise.ranking.stage import run

    root = tmp_path_factory.mktemp("ranking-rule")
    inputs = build_rule_inputs(root)
    out = root / "out"
    return StageRun(inputs, out, run(inputs.context(out)))


@dataclass(frozen=True)
class Builders:
    """The input builders, for tests that need their own folders."""

    rule_inputs: Callable[..., RankingInputs]


@pytest.fixture(scope="session")
def builders() -> Builders:
    """Access to `build_rule_inputs` (conftest modules are not importable)."""
    return Builders(rule_inputs=build_rule_inputs)
