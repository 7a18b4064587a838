"""Audiences for a product (issue 15) on the tiny shop of tests/unit/conftest.py.

u1 and u2 own the laptop and the mouse; u5 owns the phone, the headphones and the
laptop, so u5 bought what is bought with the mouse. u3 and u4 drink tea; the tea gift
box has no events, only text that matches theirs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.errors import RequestError, UnknownItemError
from shelfwise.runtime import load_engine
from shelfwise.runtime.audience import AudienceModel, audience_model

COLD_TEA = "sku-tea-gift"


@pytest.fixture(scope="module")
def model(audience_bundle_path: Path) -> AudienceModel:
    return AudienceModel.from_engine(load_engine(audience_bundle_path))


def test_the_buyer_of_the_neighbours_ranks_first_and_owners_are_left_out(
    model: AudienceModel,
) -> None:
    result = model.rank("sku-mouse", 3)
    assert result.user_ids[0] == "u5"
    assert "u1" not in result.user_ids
    assert "u2" not in result.user_ids
    assert result.signal == "cf+content"
    assert result.scores == sorted(result.scores, reverse=True)


def test_a_product_without_events_reaches_users_whose_profile_matches_its_text(
    model: AudienceModel,
) -> None:
    result = model.rank(COLD_TEA, 2)
    assert result.signal == "content"
    assert set(result.user_ids) == {"u3", "u4"}


def test_active_days_keeps_recent_users(model: AudienceModel) -> None:
    result = model.rank(COLD_TEA, 3, active_days=1)
    assert set(result.user_ids) == {"u1", "u2"}  # the only users active on the last day


def test_batches_match_single_products(model: AudienceModel) -> None:
    batch = list(model.rank_many(["sku-mouse", COLD_TEA, "sku-book"], 4, block=2))
    assert [r.raw_item_id for r in batch] == ["sku-mouse", COLD_TEA, "sku-book"]
    assert batch[1] == model.rank(COLD_TEA, 4)


def test_bad_requests_say_what_to_do(model: AudienceModel) -> None:
    with pytest.raises(UnknownItemError, match="item 'sku-x' is not in the model's catalog"):
        model.rank("sku-x", 3)
    with pytest.raises(RequestError, match="active_days: 0 is out of range; give 1 to 36500"):
        model.rank("sku-mouse", 3, active_days=0)


def test_a_bundle_without_audience_files_ranks_by_co_occurrence(bundle_path: Path) -> None:
    engine = load_engine(bundle_path)
    result = audience_model(engine).rank("sku-mouse", 2)
    assert result.user_ids[0] == "u5"
    assert result.signal == "cf"
    assert audience_model(engine) is audience_model(engine)  # read once per engine
