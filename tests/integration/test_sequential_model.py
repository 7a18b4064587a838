"""SASRec through the pipeline (early stopping on valid) and served from a bundle."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from shelfwise._internal.artifacts import read_csr
from shelfwise._internal.sequences import Sequences
from shelfwise.config import ShelfwiseConfig
from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.pipeline import run_pipeline
from shelfwise.runtime import load_engine

TINY_SASREC = {
    "hidden": 16,
    "blocks": 1,
    "max_len": 10,
    "epochs": 3,
    "negatives": 20,
    "batch_size": 64,
    "num_threads": 1,
}


def test_sasrec_is_trained_evaluated_and_served(
    tiny_config: ShelfwiseConfig, tmp_path: Path
) -> None:
    families = {"item_knn", "user_knn", "ease", "rp3beta", "als", "bpr", "content"}
    families |= {"buy_again", "tifu_knn"}  # the repeat models (issue 15): not tested here
    overrides = {
        f"{name}": tiny_config.models.families()[name].model_copy(update={"enabled": False})
        for name in families
    }
    overrides["sasrec"] = tiny_config.models.sasrec.model_copy(
        update={"enabled": True, "params": TINY_SASREC, "tune": False}
    )
    config = tiny_config.model_copy(
        update={"models": tiny_config.models.model_copy(update=overrides)}
    )
    outcome = run_pipeline(config, until="evaluate")
    fitted = json.loads((outcome.run_dir / "retrieval" / "models.json").read_text())
    assert set(fitted) >= {"popularity", "sasrec"}
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    assert metrics["recommendation"]["test"]["sasrec"]["ndcg@10"] >= 0.0

    features = outcome.run_dir / "features"
    retrieval = outcome.run_dir / "retrieval"
    spec = BundleSpec(
        items=pl.read_parquet(features / "items.parquet"),
        users=pl.read_parquet(features / "users.parquet"),
        histories=read_csr(features / "full.npz"),
        components={
            "recommender": ("sasrec", retrieval / "sasrec"),
            "popular": ("popularity", retrieval / "popularity"),
        },
        sequences=Sequences.load(features / "full_seq.npz"),
    )
    bundle = tmp_path / "bundle"
    write_bundle(spec, bundle)
    engine = load_engine(bundle)
    user = spec.users["raw_user_id"][0]
    result = engine.recommend(user, 5)
    assert result.fallback is None
    assert len(result.items) == 5
    history = spec.histories[0].indices
    seen = set(spec.items["raw_item_id"].gather(history).to_list())
    assert not seen & {item.raw_item_id for item in result.items}
