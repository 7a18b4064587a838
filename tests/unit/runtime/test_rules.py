"""`shelfwise.runtime.rules` and `steering`: which rules meet a request, what they act on,
and the order they are applied in (issue 17).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from shelfwise.config.rules import Rule, RulesConfig, normalise_query
from shelfwise.runtime.catalog import Catalog
from shelfwise.runtime.diversity import DiversityOptions
from shelfwise.runtime.rules import RuleContext, RuleSet, category_page, targets
from shelfwise.runtime.steering import SteeringPlan, steer

CATALOG = Catalog(
    pl.DataFrame(
        {
            "raw_item_id": ["a", "b", "c", "d", "e"],
            "title": ["A", "B", "C", "D", "E"],
            "category": ["shoes", "shoes", "bags", "bags", "hats"],
            "brand": ["Nike", "Puma", "Nike", "Gucci", "Puma"],
            "price": [50.0, 80.0, 120.0, 900.0, 20.0],
            "in_stock": [True] * 5,
            "attributes": [
                '{"color": "red", "tags": ["sale"]}',
                None,
                '{"color": "Red"}',
                "x",
                None,
            ],
        }
    )
)
RANKED = [CATALOG.item(n, 5.0 - n) for n in range(4)]  # a b c d; e not ranked
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _rule(**values: Any) -> Rule:
    return Rule.model_validate({"id": "r", **values})


def _context(**values: Any) -> RuleContext:
    given: dict[str, Any] = {
        "endpoint": "search",
        "query": None,
        "category_page": None,
        "segment": None,
        "moment": NOW,
    }
    return RuleContext(**(given | values))


def _steer(*rules: Rule, k: int = 4, **options: Any) -> tuple[list[str], list[str]]:
    plan = SteeringPlan(list(rules), DiversityOptions(**options))
    items, applied, _ = steer(CATALOG, list(RANKED), k, plan)
    return [item.raw_item_id for item in items], applied


def test_queries_match_normalised() -> None:
    assert normalise_query("  Running   ＳＨＯＥＳ ") == "running shoes"
    rules = RuleSet(
        1, RulesConfig(rules=[_rule(action="pin", items=["e"], queries=["Running Shoes"])])
    )
    assert rules.matching(_context(query="running  shoes"))
    assert not rules.matching(_context(query="running"))
    assert not rules.matching(_context(endpoint="recommend"))


def test_conditions_time_window_segment_and_category_page() -> None:
    window = _rule(
        action="hide", items=["a"], start="2026-12-01T00:00:00Z", end="2026-12-07T00:00:00+00:00"
    )
    assert RuleSet(1, RulesConfig(rules=[window])).matching(_context())
    later = _context(moment=datetime(2026, 12, 7, tzinfo=UTC))  # end is exclusive
    assert not RuleSet(1, RulesConfig(rules=[window])).matching(later)
    vip = RuleSet(1, RulesConfig(rules=[_rule(action="hide", items=["a"], segments=["vip"])]))
    assert vip.matching(_context(segment="vip"))
    assert not vip.matching(_context())
    page = RuleSet(1, RulesConfig(rules=[_rule(action="hide", items=["a"], category_page="Shoes")]))
    assert page.matching(_context(category_page="shoes"))
    assert not page.matching(_context(category_page=None))
    assert category_page(["bags"]) == "bags"
    assert category_page(["a", "b"]) is None


def test_targets_brand_category_price_band_and_attributes() -> None:
    def hit(**values: Any) -> list[str]:
        mask = targets(_rule(action="boost", **values), CATALOG, RANKED, range(4))
        return [item.raw_item_id for item, on in zip(RANKED, mask, strict=True) if on]

    assert hit(brand=["nike"]) == ["a", "c"]
    assert hit(category=["BAGS"]) == ["c", "d"]
    assert hit(price_min=60, price_max=200) == ["b", "c"]
    assert hit(attributes={"color": "red"}) == ["a", "c"]
    assert hit(attributes={"tag": "sale"}) == ["a"]
    assert hit(brand=["nike"], category=["shoes"]) == ["a"]  # every target must hold


def test_a_pin_is_inserted_first_even_when_not_ranked() -> None:
    ids, applied = _steer(_rule(action="pin", items=["e"]))
    assert ids == ["e", "a", "b", "c"]
    assert applied == ["r"]


def test_a_ranked_pin_moves_to_its_position() -> None:
    assert _steer(_rule(action="pin", items=["d"], position=2))[0] == ["a", "d", "b", "c"]


def test_the_first_pin_rule_wins_a_contested_position() -> None:
    first = Rule(id="one", action="pin", items=["e"])
    second = Rule(id="two", action="pin", items=["d"])
    assert _steer(first, second)[0][:2] == ["e", "d"]


def test_bury_moves_down_boost_moves_up_hide_removes() -> None:
    assert _steer(_rule(action="bury", items=["a"]))[0] == ["b", "c", "d", "a"]
    assert _steer(_rule(action="boost", brand=["gucci"]))[0] == ["d", "a", "b", "c"]
    # weight 0.3 of a four-item list: one place down (1 - 0/4 - 0.3 = 0.7 < 0.75)
    assert _steer(_rule(action="bury", items=["a"], weight=0.3))[0] == ["b", "a", "c", "d"]
    ids, applied = _steer(_rule(action="hide", brand=["nike"]))
    assert ids == ["b", "d"]
    assert applied == ["r"]


def test_a_hidden_item_is_never_pinned_and_rules_without_effect_are_not_applied() -> None:
    hide = Rule(id="hide", action="hide", items=["e"])
    pin = Rule(id="pin", action="pin", items=["e"])
    ids, applied = _steer(hide, pin)
    assert "e" not in ids
    assert applied == []  # e was not ranked: the hide removed nothing, the pin placed nothing


def test_rules_then_caps_then_pins() -> None:
    # boost Puma, cap one per brand: b (Puma) first, then a (Nike), d (Gucci); c is Nike
    ids, _ = _steer(_rule(action="boost", brand=["puma"]), max_per_brand=1)
    assert ids == ["b", "a", "d"]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"action": "pin"}, "needs `items`"),
        ({"action": "bury"}, "needs a target"),
        ({"action": "pin", "items": ["a"], "brand": ["x"]}, "pins `items` only"),
        ({"action": "hide", "items": ["a"], "weight": 0}, "greater than 0"),
        ({"action": "hide", "items": ["a"], "start": "2026-01-01T00:00:00"}, "timezone"),
        ({"action": "pin", "items": ["a"], "price_max": 1}, "pins `items` only"),
        ({"action": "hide", "items": ["a"], "shout": True}, "Extra inputs"),
    ],
)
def test_invalid_rules_are_refused_with_the_reason(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        _rule(**values)


def test_windows_are_kept_in_utc_even_at_the_calendar_edges() -> None:
    east = _rule(action="hide", items=["a"], start="2026-01-01T08:00:00+08:00")
    assert east.start == datetime(2026, 1, 1, tzinfo=UTC)
    edges = _rule(
        action="hide",
        items=["a"],
        start="0001-01-01T00:00:00+23:59",
        end="9999-12-31T23:59:59-23:59",
    )
    assert edges.active_at(NOW)  # no OverflowError, an always-open window
