"""A session-split run packages its session model, and the server answers visits with it.

The whole pipeline on the tiny generated shop (its events carry a session_id) with
`split.method: session`: the evaluate stage keeps the session model it chose, the
bundle holds it as role "session", and `POST /v1/recommend` with an inline history
lists exactly what that model ranks for the held-out sessions (then popular items).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfwise.config import ShelfwiseConfig, SplitConfig
from shelfwise.evaluate.sessions import rank_cases, session_cases
from shelfwise.features.sessions import read_session_files
from shelfwise.pipeline import run_pipeline
from shelfwise.retrieval import load_recommender
from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx
    from fastapi.testclient import TestClient

CASES = 40  # held-out sessions asked of the server


@pytest.mark.slow
def test_a_session_split_run_serves_its_session_model(
    tiny_config: ShelfwiseConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"split": SplitConfig(method="session")})
    run_dir = run_pipeline(config, until="package").run_dir
    metrics = json.loads((run_dir / "evaluate" / "metrics.json").read_text())
    family = metrics["sessions"]["model"]
    bundle = run_dir / "package" / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["components"]["session"] == family
    assert manifest["components"]["recommender"] != family  # a user-level model

    engine = load_engine(bundle)
    assert engine.has_session_model
    sessions = read_session_files(run_dir / "features")
    assert sessions is not None
    cases = session_cases(sessions["test"])
    raw = pl.read_parquet(run_dir / "features" / "items.parquet")["raw_item_id"].to_list()
    model = load_recommender(family, bundle / "models" / family)
    offline = rank_cases(model.score, cases, len(raw), 20)
    settings = ServeSettings(
        bundle_path=None,
        max_k=20,
        event_log_dir=tmp_path / "events",
        catalog_log_dir=tmp_path / "catalog",
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        for case in range(min(CASES, cases.n_cases)):
            history = [raw[int(i)] for i in cases.prefixes.row(case)]
            response = client.post(
                "/v1/recommend",
                # the protocol predicts the next click whatever the stock is today
                json={"history": history, "k": 20, "filters": {"include_out_of_stock": True}},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["personalisation"] == "session"
            listed = [item["item_id"] for item in body["items"]]
            ranked = [raw[int(i)] for i in offline[case] if i >= 0]
            assert listed[: len(ranked)] == ranked
            assert np.unique(listed).size == len(listed)
