"""BundleStore: publish, dedupe by fingerprint, list, get, latest, atomicity."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from shelfwise.errors import BundleNotFoundError, IntegrityError
from shelfwise.package import verify_bundle
from shelfwise.registry import BundleStore

if TYPE_CHECKING:
    from tests.unit.package.conftest import BundleFactory


def test_publish_list_get_latest(make_bundle: BundleFactory, tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "home")
    assert store.list() == []
    assert store.latest() is None
    first = store.publish(make_bundle("one"))
    assert first.version == 1
    assert first.path == tmp_path / "home" / "bundles" / "1"
    assert verify_bundle(first.path).fingerprint == first.fingerprint
    assert first.metrics == {"item_knn.ndcg@10": 0.4, "item_knn.recall@10": 0.5}
    assert first.components["recommender"] == "item_knn"

    changed = make_bundle("two", users=pl.DataFrame({"raw_user_id": ["u1", "u2", "new"]}))
    second = store.publish(changed)
    assert second.version == 2
    assert [info.version for info in store.list()] == [1, 2]
    assert store.get(1) == first
    latest = store.latest()
    assert latest is not None
    assert latest.version == 2


def test_same_content_is_not_published_twice(make_bundle: BundleFactory, tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "home")
    first = store.publish(make_bundle("one"))
    again = store.publish(
        make_bundle("rerun", lineage={"run_id": "run-2", "config_hash": "c" * 64})
    )
    assert again == first
    assert [info.version for info in store.list()] == [1]


def test_get_unknown_version_names_the_stored_ones(
    make_bundle: BundleFactory, tmp_path: Path
) -> None:
    store = BundleStore(tmp_path / "home")
    with pytest.raises(BundleNotFoundError, match="stored versions: none"):
        store.get(1)
    store.publish(make_bundle())
    with pytest.raises(BundleNotFoundError, match="version 7 .* stored versions: 1"):
        store.get(7)


def test_damaged_bundle_is_refused(make_bundle: BundleFactory, tmp_path: Path) -> None:
    path = make_bundle()
    (path / "users.parquet").write_bytes(b"broken")
    store = BundleStore(tmp_path / "home")
    with pytest.raises(IntegrityError, match="users.parquet"):
        store.publish(path)
    assert store.list() == []
    assert not (tmp_path / "home" / "bundles").exists()  # verified before anything is written


def test_half_written_versions_are_invisible(make_bundle: BundleFactory, tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "home")
    # What a killed publisher leaves: a hidden staging folder, never a numbered one.
    leftover = tmp_path / "home" / "bundles" / ".publish.tmp-1-abc"
    leftover.mkdir(parents=True)
    (leftover / "items.parquet").write_bytes(b"partial")
    assert store.list() == []
    info = store.publish(make_bundle())
    assert info.version == 1


def test_concurrent_publisher_taking_the_number(
    make_bundle: BundleFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BundleStore(tmp_path / "home")
    store.publish(make_bundle("one"))
    other = make_bundle("two", users=pl.DataFrame({"raw_user_id": ["x", "y", "z"]}))
    real_versions = store._versions
    calls = {"n": 0}

    def stale_versions() -> set[int]:
        # The first lookup misses version 2, which another process is creating.
        calls["n"] += 1
        if calls["n"] == 2:
            (store.root / "2").mkdir()
            (store.root / "2" / "manifest.json").write_text("{}")
            return {1}
        return real_versions()

    monkeypatch.setattr(store, "_versions", stale_versions)
    info = store.publish(other)
    assert info.version == 3
