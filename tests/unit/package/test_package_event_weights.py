"""The bundle keeps the event weights its histories were built with (training/serving skew:
serving used to weigh live events with a constant table of its own).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import pytest

from shelfwise.contracts import EventType
from shelfwise.errors import ArtifactError, IntegrityError
from shelfwise.package import read_event_weights, verify_bundle, write_bundle
from shelfwise.package.bundle import EVENT_WEIGHTS_FILE

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import BundleFactory, SpecFactory

WEIGHTS = {EventType.VIEW: 1.0, EventType.CART: 2.5, EventType.PURCHASE: 10.0}


def test_weights_round_trip_and_are_hashed(make_bundle: BundleFactory) -> None:
    path = make_bundle(event_weights=WEIGHTS)
    manifest = verify_bundle(path)
    assert EVENT_WEIGHTS_FILE in manifest.files
    assert json.loads((path / EVENT_WEIGHTS_FILE).read_text()) == {
        "cart": 2.5,
        "purchase": 10.0,
        "view": 1.0,
    }
    assert read_event_weights(path) == WEIGHTS
    without = verify_bundle(make_bundle("without"))
    assert without.fingerprint != manifest.fingerprint  # the weights are content


def test_a_bundle_without_weights_reads_none(make_bundle: BundleFactory) -> None:
    path = make_bundle()
    assert not (path / EVENT_WEIGHTS_FILE).exists()
    assert read_event_weights(path) is None


def test_changed_weights_fail_verification(make_bundle: BundleFactory) -> None:
    path = make_bundle(event_weights=WEIGHTS)
    (path / EVENT_WEIGHTS_FILE).write_text(json.dumps({"view": 1.0, "purchase": 1.0}))
    with pytest.raises(IntegrityError, match=r"sha256 of event_weights\.json does not match"):
        verify_bundle(path)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"wishlist": 1.0}, "event_weights: unknown event type 'wishlist'; known: "),
        ({EventType.VIEW: "heavy"}, "event_weights: weight of 'view' is not a number"),
        ({EventType.VIEW: True}, "event_weights: weight of 'view' is not a number"),
        ({EventType.PURCHASE: math.inf}, "event_weights: weight of 'purchase' is inf, not finite"),
    ],
)
def test_write_refuses_bad_weights(
    make_spec: SpecFactory, tmp_path: Path, weights: dict[object, object], match: str
) -> None:
    with pytest.raises(ArtifactError, match=match):
        write_bundle(make_spec(event_weights=weights), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()  # checked before anything is written


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "is not readable JSON"),
        ("[1, 2]", "holds no object of event type -> weight"),
        ('{"purchase": NaN}', "weight of 'purchase' is nan, not finite"),
    ],
)
def test_read_refuses_a_damaged_weights_file(
    make_bundle: BundleFactory, text: str, match: str
) -> None:
    path = make_bundle(event_weights=WEIGHTS)
    (path / EVENT_WEIGHTS_FILE).write_text(text)
    with pytest.raises(ArtifactError, match=match):
        read_event_weights(path)
