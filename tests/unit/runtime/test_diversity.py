"""`shelfwise.runtime.diversity`: caps, MMR and margin on hand-made lists (issue 17)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shelfwise.runtime.catalog import Catalog, ScoredItem
from shelfwise.runtime.diversity import (
    DiversityOptions,
    diversify,
    facts_of,
    intra_list_similarity,
)

# six items: brands A A A B B C, categories x x y y z z, margins 0 .. 0.5
CATALOG = Catalog(
    pl.DataFrame(
        {
            "raw_item_id": [f"i{n}" for n in range(6)],
            "title": [f"item {n}" for n in range(6)],
            "category": ["x", "x", "y", "y", "z", "z"],
            "brand": ["A", "A", "A", "B", "B", "C"],
            "price": [1.0] * 6,
            "in_stock": [True] * 6,
            "attributes": [f'{{"margin": {n / 10}}}' for n in range(6)],
        }
    )
)
ITEMS = [CATALOG.item(n, 1.0 - n / 10) for n in range(6)]
INDICES = list(range(6))


def _brands(positions: list[int]) -> list[str | None]:
    return [ITEMS[p].brand for p in positions]


def test_nothing_active_keeps_the_first_k() -> None:
    assert diversify(ITEMS, INDICES, 4, DiversityOptions()) == [0, 1, 2, 3]


def test_mmr_with_lambda_zero_equals_no_diversification() -> None:
    # λ = 0 with a (no-op) cap that never binds: the same order as the plain ranking
    options = DiversityOptions(mmr_lambda=0.0, max_per_brand=10)
    assert diversify(ITEMS, INDICES, 6, options) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("cap", [1, 2])
def test_a_brand_cap_holds(cap: int) -> None:
    picked = diversify(ITEMS, INDICES, 5, DiversityOptions(max_per_brand=cap))
    brands = _brands(picked)
    assert max(brands.count(b) for b in set(brands)) <= cap
    assert picked == sorted(picked)  # within the cap the ranking order stands


def test_a_category_cap_holds_and_may_shorten_the_list() -> None:
    picked = diversify(ITEMS, INDICES, 6, DiversityOptions(max_per_category=1))
    assert [ITEMS[p].category for p in picked] == ["x", "y", "z"]


def test_mmr_spreads_brands_and_categories() -> None:
    plain = diversify(ITEMS, INDICES, 3, DiversityOptions())
    diverse = diversify(ITEMS, INDICES, 3, DiversityOptions(mmr_lambda=0.7))
    assert diverse[0] == 0  # the best item always comes first
    assert intra_list_similarity([ITEMS[p] for p in diverse], diverse) < intra_list_similarity(
        [ITEMS[p] for p in plain], plain
    )


def test_mmr_reads_item_vectors_when_given() -> None:
    vectors = np.eye(6, dtype=np.float32)
    vectors[1] = vectors[0]  # item 1 duplicates item 0
    picked = diversify(ITEMS, INDICES, 2, DiversityOptions(mmr_lambda=0.5), vectors=vectors)
    assert picked == [0, 2]


def test_margin_weight_lifts_high_margin_items() -> None:
    facts = facts_of(CATALOG)
    assert facts.margins.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    picked = diversify(ITEMS, INDICES, 2, DiversityOptions(margin_weight=10.0), facts=facts)
    assert picked == [5, 4]


def test_intra_list_similarity_by_content() -> None:
    same = [
        ScoredItem("a", 1, None, "x", "A", None, None),
        ScoredItem("b", 1, None, "x", "A", None, None),
    ]
    apart = [
        ScoredItem("a", 1, None, "x", "A", None, None),
        ScoredItem("b", 1, None, "y", "B", None, None),
    ]
    assert intra_list_similarity(same, [-1, -1]) == 1.0
    assert intra_list_similarity(apart, [-1, -1]) == 0.0
