"""The bundle keeps the repeat policy evaluation resolved; serving applies it (issue 15)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from shelfwise.errors import ArtifactError, IntegrityError
from shelfwise.package import read_repeat_policy, verify_bundle
from shelfwise.package.bundle import REPEAT_POLICY_FILE

if TYPE_CHECKING:
    from conftest import BundleFactory


def test_policy_round_trips_and_is_hashed(make_bundle: BundleFactory) -> None:
    path = make_bundle(repeat_policy="allow")
    assert REPEAT_POLICY_FILE in verify_bundle(path).files
    assert read_repeat_policy(path) == "allow"
    (path / REPEAT_POLICY_FILE).write_text(json.dumps({"policy": "exclude"}))
    with pytest.raises(IntegrityError, match="repeat_policy"):
        verify_bundle(path)


def test_older_bundles_exclude_seen_items(make_bundle: BundleFactory) -> None:
    path = make_bundle()
    assert not (path / REPEAT_POLICY_FILE).exists()
    assert read_repeat_policy(path) == "exclude"


def test_an_unresolved_policy_is_refused(make_bundle: BundleFactory) -> None:
    with pytest.raises(ArtifactError, match="resolve `learn` before packaging"):
        make_bundle(repeat_policy="learn")
