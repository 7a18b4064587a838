"""The package stage: write the served models and their metadata as one bundle.

Stage inputs: `validate` (for the data fingerprint), `features`, `retrieval`,
`evaluate`, `ranking` (click model), `search` (hybrid search), `compress` (a model
with a chosen compressed variant is bundled from `compress/models/<name>/`). Output: `bundle/`,
a self-contained, hash-verified folder (see `package.bundle`), signed when
`SHELFWISE_BUNDLE_SIGNING_KEY` is set (`package.integrity`). The runner publishes it
as a new version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from shelfwise._internal.artifacts import code_version, library_versions, read_csr, read_manifest
from shelfwise._internal.sequences import Sequences
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import hash_jsonable
from shelfwise.contracts import TIMESTAMP
from shelfwise.evaluate.sessions import SESSION_MODEL_DIR
from shelfwise.package.bundle import ROLE_SESSION, BundleSpec, write_bundle
from shelfwise.package.integrity import signing_key


def run(ctx: StageContext) -> StageResult:
    """Assemble the bundle from the selected models."""
    features, models_dir = ctx.inputs["features"], ctx.inputs["retrieval"]
    metrics: dict[str, Any] = json.loads((ctx.inputs["evaluate"] / "metrics.json").read_text())
    fitted: dict[str, dict[str, Any]] = json.loads((models_dir / "models.json").read_text())
    selected = metrics["selected"]

    folders = {name: models_dir / name for name in fitted}
    if (ctx.inputs["evaluate"] / "blend").is_dir():
        folders["blend"] = ctx.inputs["evaluate"] / "blend"
    components: dict[str, str] = {}
    if selected.get("recommender"):
        components["recommender"] = selected["recommender"]
    if "popularity" in fitted:
        components["popular"] = "popularity"
    # similar items: co-occurrence first, product text when that is all there is
    for name in ("item_knn", "content"):
        if name in fitted:
            components["similar"] = name
            break
    if selected.get("search"):
        components["search"] = selected["search"]
    hybrid = ctx.inputs["search"] / "model"
    served_search: str | None = None
    if (hybrid / "params.json").is_file():
        components["search"] = "hybrid"
        folders["hybrid"] = hybrid
        report = json.loads((ctx.inputs["search"] / "search.json").read_text())
        served_search = report.get("served")
        metrics = {
            **metrics,
            "search_variants": {
                "served": report.get("served"),
                "select_metric": report.get("select_metric"),
                "variants": report.get("variants"),
            },
        }
    components.update(_session_component(ctx.inputs["evaluate"], metrics, components, folders))
    ranker = ctx.inputs["ranking"] / "model"
    if (ranker / "features.json").is_file():
        components["ranker"] = "click_model"
        folders["click_model"] = ranker
        ranking = json.loads((ctx.inputs["ranking"] / "ranking.json").read_text())
        metrics = {**metrics, "ranking": {k: ranking.get(k) for k in ("test", "rerank")}}
    # the compress stage's choices (a distilled click model too) replace the originals
    folders.update(_compressed_folders(ctx.inputs.get("compress")))

    interactions = pl.read_parquet(features / "interactions.parquet", columns=[TIMESTAMP])
    validate_manifest = read_manifest(ctx.inputs["validate"])
    audience = _audience_folder(ctx, features)
    spec = BundleSpec(
        items=pl.read_parquet(features / "items.parquet"),
        users=pl.read_parquet(features / "users.parquet"),
        histories=read_csr(features / "full.npz"),
        components={role: (name, folders[name]) for role, name in components.items()},
        sequences=Sequences.load(features / "full_seq.npz"),
        # the weights `features` built the histories with: serving weighs live events alike
        event_weights=ctx.config.models.event_weights,
        # what evaluation resolved (`learn` decided on valid); serving applies it
        repeat_policy=selected.get("repeat_policy", "exclude"),
        audience=audience,
        metrics=metrics,
        data_fingerprint=hash_jsonable(validate_manifest.files),
        lineage={
            "run_id": ctx.run_dir.name,
            "config_hash": ctx.config.fingerprint(),
            "code_version": code_version(),
            "library_versions": library_versions(),
            "data_cutoff_timestamp": interactions[TIMESTAMP].max(),
        },
        project=ctx.config.project,
    )
    key = signing_key()  # read now: a weak key fails before anything is written
    out = ctx.out / "bundle"
    out.mkdir()
    manifest = write_bundle(spec, out, key=key)
    return StageResult(
        row_counts={"files": len(manifest.files)},
        extra={
            "fingerprint": manifest.fingerprint,
            "components": components,
            "signed": key is not None,
        },
        summary="bundle with "
        + ", ".join(
            # the search stage's pick (its search.json), not the model folder's name
            f"{r}={served_search if r == 'search' and served_search else n}"
            for r, n in components.items()
        ),
    )


def _session_component(
    evaluate: Path,
    metrics: dict[str, Any],
    components: dict[str, str],
    folders: dict[str, Path],
) -> dict[str, str]:
    """The "session" role: the session model the evaluate stage chose and kept.

    Present only after a session split (evaluate saved the model that its test rows
    scored). Its family (sknn, vsknn, stan) is never a user-level family of the run,
    so its name cannot clash with another role's model; a clash would be refused by
    `write_bundle`, so it is checked here and the session role left out instead.
    """
    folder = evaluate / SESSION_MODEL_DIR
    name = metrics.get("sessions", {}).get("model")
    if not isinstance(name, str) or not (folder / "params.json").is_file():
        return {}
    if name in folders and name in components.values():
        return {}
    folders[name] = folder
    return {ROLE_SESSION: name}


def _audience_folder(ctx: StageContext, features: Path) -> Path:
    """The bundle's `audience/` files (content vectors, user profiles, last activity),
    written next to the bundle in the stage's folder."""
    from shelfwise.package.audience import last_active, write_audience

    users = pl.read_parquet(features / "users.parquet")
    histories = read_csr(features / "full.npz")
    return write_audience(
        ctx.out / "audience",
        items=pl.read_parquet(features / "items.parquet"),
        histories=histories,
        last_event=last_active(
            pl.scan_parquet(features / "interactions.parquet").select("user_index", TIMESTAMP),
            users.height,
        ),
    )


def _compressed_folders(compress: Path | None) -> dict[str, Path]:
    """Model name -> the compressed folder the compress stage chose for it."""
    report = None if compress is None else compress / "compression.json"
    if report is None or not report.is_file():
        return {}
    assert compress is not None  # report exists
    components: dict[str, Any] = json.loads(report.read_text())["components"]
    return {
        name: compress / "models" / name
        for name, info in components.items()
        if info.get("chosen", "baseline") != "baseline" and (compress / "models" / name).is_dir()
    }
