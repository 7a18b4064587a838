"""Integrity that means something (issue 14, point 5): manifest fields, signatures, arrays."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from shelfwise._internal.artifacts import read_array, sha256_file
from shelfwise.errors import ArtifactError, ConfigError, IntegrityError, ManifestError
from shelfwise.package import verify_bundle, write_bundle
from shelfwise.package.bundle import check_unhashed_bundle
from shelfwise.package.integrity import (
    SIGNATURE_FILE,
    field_digests,
    fingerprint_v1,
    fingerprint_v2,
    signing_key,
)

if TYPE_CHECKING:
    from conftest import BundleFactory, SpecFactory

KEY = b"k" * 16 + b"0123456789abcdef"  # 32 bytes, not one repeated character
OTHER_KEY = b"another-key-of-at-least-32-bytes!!"
CUTOFF = 1_767_225_600  # 2026-01-01
LINEAGE = {"run_id": "run-1", "config_hash": "c" * 64, "data_cutoff_timestamp": CUTOFF}


def _edit(path: Path, change: dict[str, Any], *, rehash: bool = False) -> None:
    """Edit manifest.json; `rehash` recomputes fields and fingerprint consistently."""
    manifest = json.loads((path / "manifest.json").read_text())
    for dotted, value in change.items():
        target = manifest
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value
    if rehash:
        manifest["files"] = {
            rel: sha256_file(path / rel) for rel in manifest["files"] if (path / rel).is_file()
        }
        manifest["fields"] = field_digests(manifest)
        manifest["fingerprint"] = fingerprint_v2(manifest["files"], manifest["fields"])
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # year 2100: the staleness gauge read 4.1e9 and the stale-model alert never fired
        ("lineage.data_cutoff_timestamp", 4_102_444_800),
        ("project", "someone-else"),
        ("n_items", 5),
        ("n_users", 0),
        ("metrics.item_knn", {"ndcg@10": 0.99}),
        ("data_fingerprint", "0" * 64),
        ("created_at", "2100-01-01T00:00:00Z"),
        ("lineage.run_id", "run-9"),
    ],
)
def test_an_edited_manifest_field_is_refused_by_name(
    make_bundle: BundleFactory, field: str, value: object
) -> None:
    path = make_bundle(lineage=LINEAGE)
    verify_bundle(path, key=None)
    _edit(path, {field: value})
    named = "metrics" if field.startswith("metrics.") else field
    with pytest.raises(IntegrityError, match=rf"{named} was changed; rebuild or re-publish"):
        verify_bundle(path, key=None)


def test_added_and_removed_lineage_keys_are_named(make_bundle: BundleFactory) -> None:
    path = make_bundle(lineage=LINEAGE)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["lineage"]["config_hash"]
    manifest["lineage"]["approved_by"] = "nobody"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError) as caught:
        verify_bundle(path, key=None)
    assert "lineage.approved_by was added" in caught.value.message
    assert "lineage.config_hash was removed" in caught.value.message


def test_an_edited_fields_record_breaks_the_fingerprint(make_bundle: BundleFactory) -> None:
    path = make_bundle(lineage=LINEAGE)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["project"] = "someone-else"
    manifest["fields"] = field_digests(manifest)  # fields re-hashed, fingerprint not
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="does not match its files and fields"):
        verify_bundle(path, key=None)


def test_a_signed_bundle_loads_only_with_its_key(make_spec: SpecFactory, tmp_path: Path) -> None:
    path = tmp_path / "signed"
    write_bundle(make_spec(lineage=LINEAGE), path, key=KEY)
    signature = json.loads((path / SIGNATURE_FILE).read_text())
    assert signature["scheme"] == "hmac-sha256"
    assert KEY.decode() not in (path / SIGNATURE_FILE).read_text()
    assert verify_bundle(path, key=KEY).project == "tiny"
    assert verify_bundle(path, key=None).project == "tiny"  # no key configured: not checked
    with pytest.raises(IntegrityError, match="signed with key .* not the configured key"):
        verify_bundle(path, key=OTHER_KEY)
    # consistent re-hashing passes every hash: only the signature catches it
    _edit(path, {"lineage.data_cutoff_timestamp": 4_102_444_800}, rehash=True)
    verify_bundle(path, key=None)
    with pytest.raises(IntegrityError, match="signature does not match manifest.json"):
        verify_bundle(path, key=KEY)


def test_an_unsigned_bundle_is_refused_when_a_key_is_set(make_bundle: BundleFactory) -> None:
    path = make_bundle()
    with pytest.raises(IntegrityError, match="is not signed, and SHELFWISE_BUNDLE_SIGNING_KEY"):
        verify_bundle(path, key=KEY)
    (path / SIGNATURE_FILE).write_text("not json")
    with pytest.raises(IntegrityError, match="not a shelfwise signature"):
        verify_bundle(path, key=KEY)


def test_the_key_comes_from_the_environment(
    make_spec: SpecFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert signing_key({}) is None
    assert signing_key({"SHELFWISE_BUNDLE_SIGNING_KEY": KEY.decode()}) == KEY
    with pytest.raises(ConfigError, match="holds 5 bytes; an HMAC key needs at least 32"):
        signing_key({"SHELFWISE_BUNDLE_SIGNING_KEY": "short"})
    with pytest.raises(ConfigError, match="of one repeated character"):
        signing_key({"SHELFWISE_BUNDLE_SIGNING_KEY": "0" * 40})
    path = tmp_path / "signed"
    write_bundle(make_spec(), path, key=KEY)
    monkeypatch.setenv("SHELFWISE_BUNDLE_SIGNING_KEY", OTHER_KEY.decode())
    with pytest.raises(IntegrityError, match="not the configured key"):
        verify_bundle(path)  # the default reads the environment
    monkeypatch.setenv("SHELFWISE_BUNDLE_SIGNING_KEY", KEY.decode())
    verify_bundle(path)


class _Payload:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.makedirs, (str(self.marker),))


def _object_array(marker: Path) -> np.ndarray[Any, Any]:
    array = np.empty(1, dtype=object)
    array[0] = _Payload(marker)
    return array


def test_an_object_array_is_refused_without_being_unpickled(
    make_bundle: BundleFactory, tmp_path: Path
) -> None:
    path = make_bundle()
    marker = tmp_path / "pickle-ran"
    target = path / "models" / "popularity" / "item_scores.npy"
    np.save(target, _object_array(marker), allow_pickle=True)
    _edit(path, {}, rehash=True)  # hashes updated: the file checks alone pass
    with pytest.raises(IntegrityError, match=r"item_scores\.npy holds an object array"):
        verify_bundle(path, key=None)
    with pytest.raises(ArtifactError, match="cannot be read without pickle"):
        read_array(target)
    assert not marker.exists()


def test_an_object_array_inside_an_npz_is_refused(
    make_bundle: BundleFactory, tmp_path: Path
) -> None:
    path = make_bundle()
    marker = tmp_path / "pickle-ran"
    with (
        zipfile.ZipFile(path / "histories.npz", "a") as archive,
        archive.open("evil.npy", "w") as f,
    ):
        np.lib.format.write_array(f, _object_array(marker), allow_pickle=True)
    _edit(path, {}, rehash=True)
    with pytest.raises(IntegrityError, match=r"histories\.npz:evil\.npy holds an object array"):
        verify_bundle(path, key=None)
    assert not marker.exists()


def test_a_pickle_file_is_refused(make_bundle: BundleFactory) -> None:
    path = make_bundle()
    (path / "models" / "popularity" / "model.pkl").write_bytes(b"\x80\x04N.")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["models/popularity/model.pkl"] = ""
    (path / "manifest.json").write_text(json.dumps(manifest))
    _edit(path, {}, rehash=True)
    with pytest.raises(IntegrityError, match=r"model\.pkl, a pickle file"):
        verify_bundle(path, key=None)


def test_a_schema_1_bundle_still_verifies_the_old_way(make_bundle: BundleFactory) -> None:
    path = make_bundle(lineage=LINEAGE)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["fields"]
    manifest["schema_version"] = 1
    manifest["fingerprint"] = fingerprint_v1(manifest["files"], manifest["components"])
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert verify_bundle(path, key=None).schema_version == 1
    with pytest.raises(IntegrityError, match="is not signed"):
        verify_bundle(path, key=KEY)  # with a key, only signed (schema 2) bundles load
    manifest["components"]["recommender"] = "popularity"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="does not match its files and fields"):
        verify_bundle(path, key=None)


def test_an_unknown_schema_is_named(make_bundle: BundleFactory) -> None:
    path = make_bundle()
    _edit(path, {"schema_version": 7})
    with pytest.raises(ManifestError, match="bundle schema 7 is not one this shelfwise reads"):
        verify_bundle(path, key=None)


def test_without_hashing_object_arrays_and_signatures_are_still_checked(
    make_bundle: BundleFactory, make_spec: SpecFactory, tmp_path: Path
) -> None:
    # serve.verify_bundle: false skips re-hashing, not the checks that keep code from running
    path = make_bundle()
    marker = tmp_path / "pickle-ran"
    np.save(
        path / "models" / "popularity" / "item_scores.npy",
        _object_array(marker),
        allow_pickle=True,
    )
    with pytest.raises(IntegrityError, match=r"item_scores\.npy holds an object array"):
        check_unhashed_bundle(path, key=None)
    assert not marker.exists()
    signed = tmp_path / "signed"
    write_bundle(make_spec(lineage=LINEAGE), signed, key=KEY)
    assert check_unhashed_bundle(signed, key=KEY).project == "tiny"
    with pytest.raises(IntegrityError, match="not the configured key"):
        check_unhashed_bundle(signed, key=OTHER_KEY)
