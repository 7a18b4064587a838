"""The catalog's stock default: which items a request without a stock filter sees."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shelfwise.runtime.catalog import Catalog, Filters

# in stock, sold out, unknown
ITEMS = pl.DataFrame(
    {
        "raw_item_id": ["a", "b", "c"],
        "title": ["A", "B", "C"],
        "category": ["x", "x", "y"],
        "brand": [None, None, None],
        "price": [1.0, 2.0, 3.0],
        "in_stock": [True, False, None],
    }
)


@pytest.mark.parametrize(
    ("hide", "filters", "listed"),
    [
        (False, None, [True, True, True]),  # offline users (the gate) list everything
        (True, None, [True, False, True]),  # unknown stock stays shown
        (True, Filters(include_out_of_stock=True), [True, True, True]),
        (True, Filters(in_stock=False), [False, True, False]),  # the back-office view
        (True, Filters(in_stock=False, include_out_of_stock=False), [False, True, False]),
        (True, Filters(category="x"), [True, False, False]),
        (True, Filters(category="x", include_out_of_stock=True), [True, True, False]),
        (False, Filters(in_stock=True), [True, False, True]),
    ],
)
def test_the_stock_default_and_its_overrides(
    hide: bool, filters: Filters | None, listed: list[bool]
) -> None:
    catalog = Catalog(ITEMS)
    catalog.hide_out_of_stock = hide
    assert (~catalog.blocked(filters)).tolist() == listed


def test_an_online_stock_change_and_removal_follow_the_default() -> None:
    catalog = Catalog(ITEMS)
    catalog.hide_out_of_stock = True
    display = {0: ("A", "x", None, 1.0, False), 1: ("B", "x", None, 2.0, True)}
    catalog.overrides = catalog.with_updates(display, removed=[2], extension=None)
    assert (~catalog.blocked(None)).tolist() == [False, True, False]
    shown = catalog.blocked(Filters(include_out_of_stock=True))
    assert np.array_equal(~shown, [True, True, False])  # removed items stay removed
