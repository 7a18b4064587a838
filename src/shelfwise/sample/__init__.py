"""The built-in sample shop: a bilingual (Chinese/English) catalog, events and labels.

`generate_shop` writes `catalog`, `events` and `queries` files with the shelfwise column
names, drawn from a simulation with known ground truth: shoppers with latent tastes,
sessions that browse or search, position-biased clicks, carts and purchases, and
graded relevance labels for a few hundred queries.
"""

from __future__ import annotations

from shelfwise.sample.generator import ShopSummary, generate_shop

__all__ = ["ShopSummary", "generate_shop"]
