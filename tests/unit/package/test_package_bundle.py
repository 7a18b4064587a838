"""write_bundle / read_bundle_manifest / verify_bundle."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest

import shelfwise.package
from shelfwise._internal.artifacts import read_csr
from shelfwise.errors import ArtifactError, BundleNotFoundError, IntegrityError, ManifestError
from shelfwise.package import read_bundle_manifest, verify_bundle, write_bundle
from shelfwise.retrieval import load_recommender, load_search_index

if TYPE_CHECKING:
    from conftest import BundleFactory, SpecFactory


def test_round_trip(make_bundle: BundleFactory) -> None:
    path = make_bundle()
    manifest = verify_bundle(path)
    assert manifest == read_bundle_manifest(path)
    assert manifest.format == "shelfwise-bundle"
    assert (manifest.n_items, manifest.n_users) == (4, 3)
    assert manifest.components == {
        "recommender": "item_knn",
        "popular": "popularity",
        "similar": "item_knn",
        "search": "bm25",
    }
    assert manifest.lineage["run_id"] == "run-1"
    assert manifest.metrics["item_knn"]["ndcg@10"] == 0.4
    assert set(manifest.files) >= {"items.parquet", "users.parquet", "histories.npz"}
    # item_knn serves two roles and is stored once.
    assert sorted(p.name for p in (path / "models").iterdir()) == ["bm25", "item_knn", "popularity"]
    items = pl.read_parquet(path / "items.parquet")
    assert items.columns[:6] == ["raw_item_id", "title", "category", "brand", "price", "in_stock"]
    assert items["brand"].null_count() == 4  # missing display columns become nulls
    assert items["title"][0] == "ThinkPad 笔记本电脑"
    histories = read_csr(path / "histories.npz")
    assert histories.shape == (3, 4)
    assert histories[1, 2] == 5.0
    knn = load_recommender("item_knn", path / "models" / "item_knn")
    assert knn.score(histories[:1]).shape == (1, 4)
    assert load_search_index("bm25", path / "models" / "bm25").score("笔记本电脑")[0] > 0


def test_no_pickle_anywhere(make_bundle: BundleFactory) -> None:
    path = make_bundle()
    for file in path.rglob("*"):
        assert file.suffix not in {".pkl", ".pickle", ".joblib"}
        if file.suffix in {".npy", ".npz"}:
            loaded = np.load(file, allow_pickle=False)
            if hasattr(loaded, "close"):
                loaded.close()


def test_fingerprint_is_stable_across_writes(make_bundle: BundleFactory) -> None:
    first = verify_bundle(make_bundle("one"))
    time.sleep(1.1)  # zip and parquet timestamps, if any, would change
    # another run, another time: the same content (when and by which run stay out)
    second = verify_bundle(make_bundle("two", lineage={"run_id": "run-2", "config_hash": "c" * 64}))
    assert first.files == second.files
    assert first.fingerprint == second.fingerprint
    assert first.created_at != second.created_at
    assert first.fields["lineage.run_id"] != second.fields["lineage.run_id"]


def test_fingerprint_changes_with_content(make_bundle: BundleFactory) -> None:
    first = verify_bundle(make_bundle("one"))
    other = verify_bundle(
        make_bundle("two", users=pl.DataFrame({"raw_user_id": ["u1", "u2", "x"]}))
    )
    assert first.fingerprint != other.fingerprint
    # the manifest's meaning is content too (issue 14): lineage, project, metrics
    for name, changes in {
        "three": {"lineage": {"run_id": "run-1", "config_hash": "d" * 64}},
        "four": {"project": "other"},
        "five": {"metrics": {"item_knn": {"ndcg@10": 0.5}}},
    }.items():
        assert verify_bundle(make_bundle(name, **changes)).fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("tamper", r"items\.parquet does not match"),
        ("delete", r"missing models/popularity/item_scores\.npy"),
        ("extra", r"not in its manifest: stray\.txt"),
        ("manifest", "components was changed"),
    ],
)
def test_verify_detects_changes(make_bundle: BundleFactory, change: str, match: str) -> None:
    path = make_bundle()
    if change == "tamper":
        data = bytearray((path / "items.parquet").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (path / "items.parquet").write_bytes(bytes(data))
    elif change == "delete":
        os.remove(path / "models" / "popularity" / "item_scores.npy")
    elif change == "extra":
        (path / "stray.txt").write_text("hello")
    else:
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["components"]["recommender"] = "popularity"
        (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=match):
        verify_bundle(path)


def test_read_manifest_errors(make_bundle: BundleFactory, tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError, match="no bundle folder"):
        read_bundle_manifest(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match="has no manifest.json"):
        read_bundle_manifest(empty)
    path = make_bundle()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["surprise"] = 1
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="surprise"):
        read_bundle_manifest(path)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("components", {"recommender": "../../outside"}, "not a plain name"),
        ("components", {"recommender": "models/als"}, "not a plain name"),
        ("files", {"../outside.npy": "0" * 64}, "leaves the bundle folder"),
        ("files", {"/etc/passwd": "0" * 64}, "leaves the bundle folder"),
    ],
)
def test_manifest_paths_cannot_leave_the_bundle(
    make_bundle: BundleFactory, key: str, value: dict[str, str], match: str
) -> None:
    path = make_bundle()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest[key] = value
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=match):
        read_bundle_manifest(path)


def test_write_refuses_bad_specs(make_spec: SpecFactory, tmp_path: Path) -> None:
    import scipy.sparse as sp

    spec = make_spec()
    with pytest.raises(ArtifactError, match="shape"):
        write_bundle(make_spec(histories=sp.csr_matrix((2, 4))), tmp_path / "a")
    with pytest.raises(ArtifactError, match="roles"):
        write_bundle(make_spec(components={"popular": spec.components["popular"]}), tmp_path / "b")
    duplicated = spec.items.with_columns(pl.lit("same").alias("raw_item_id"))
    with pytest.raises(ArtifactError, match="duplicates"):
        write_bundle(make_spec(items=duplicated), tmp_path / "c")
    twice = dict(spec.components, similar=("item_knn", spec.components["popular"][1]))
    with pytest.raises(ArtifactError, match="two folders"):
        write_bundle(make_spec(components=twice), tmp_path / "d")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(ArtifactError, match="not empty"):
        write_bundle(spec, full)


def test_all_matches_namespace() -> None:
    public = {
        name
        for name in vars(shelfwise.package)
        if not name.startswith("_")
        and name not in {"annotations", "TYPE_CHECKING", "audience", "bundle", "integrity", "stage"}
    }
    assert public == set(shelfwise.package.__all__)
    assert list(shelfwise.package.__all__) == sorted(shelfwise.package.__all__)
