"""Shoppers with latent tastes, and the affinity of a shopper for an item.

Each shopper has:

- a category preference drawn from a Dirichlet concentrated on one or two "home"
  departments, plus a second preference it drifts towards over the simulated window
  (so a time split sees slightly different tastes than training);
- a style vector (dot product with the item's brand-driven style), a favourite brand
  (a bonus in every category the brand sells in), a preferred price level and a price
  sensitivity;
- an activity level (lognormal, so a few shoppers are very active) and a share of
  searches typed in Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shelfwise.sample._catalog import (
    BRAND_NAMES,
    CATEGORY_DEPARTMENT,
    DEPARTMENT_KEYS,
    STYLE_DIMENSIONS,
    CatalogModel,
    category_shares,
)
from shelfwise.sample._categories import CATEGORIES

_HOME_ALPHA = 0.6  # Dirichlet weight of categories in a shopper's home departments
_AWAY_ALPHA = 0.03  # ... and of all other categories
_BACKGROUND_SHARE = 0.08  # share of sessions in a category chosen by overall popularity
_DRIFT = 0.35  # share of the late preference that is new
_FAVOURITE_BRAND_BONUS = 1.2
_STYLE_WEIGHT = 0.8
_TREND_WEIGHT = 0.8


@dataclass(frozen=True)
class ShopperModel:
    """Ground truth of the shoppers.

    Attributes:
        raw_user_ids: Raw id of each shopper.
        activity: Probability that a session belongs to each shopper.
        early_keys: Shopper index + cumulative category preference at the window start,
            flattened (shoppers x categories); sample with `searchsorted`.
        late_keys: The same at the window end.
        style: Style vectors (shoppers x STYLE_DIMENSIONS).
        favourite_brand: Global brand index of each shopper's favourite brand.
        price_level: Preferred standardised log price.
        price_sensitivity: Weight of the distance to the preferred price level.
        chinese_share: Probability that a search is typed in Chinese.
    """

    raw_user_ids: list[str]
    activity: NDArray[np.float64]
    early_keys: NDArray[np.float64]
    late_keys: NDArray[np.float64]
    style: NDArray[np.float64]
    favourite_brand: NDArray[np.int64]
    price_level: NDArray[np.float64]
    price_sensitivity: NDArray[np.float64]
    chinese_share: NDArray[np.float64]

    @property
    def n_users(self) -> int:
        """Number of shoppers."""
        return len(self.raw_user_ids)


_BLOCK_USERS = 65_536  # users per block of the (users x categories) arrays


def _preferences(
    n_users: int, active: NDArray[np.bool_], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Category preferences (users x categories), each row summing to one.

    The (users x categories) temporaries are built a block of users at a time: the
    gamma draws come from the same stream in the same order, so the result is the
    same as in one piece, with a fraction of the peak memory (2.25M users: ~0.5 GB
    per array instead of ~2 GB of temporaries).
    """
    shares = category_shares() * active
    shares /= shares.sum()
    department_traffic = np.bincount(CATEGORY_DEPARTMENT, weights=shares)
    n_departments = len(DEPARTMENT_KEYS)
    first = rng.choice(n_departments, size=n_users, p=department_traffic)
    second = rng.choice(n_departments, size=n_users, p=department_traffic)
    has_second = rng.random(n_users) < 0.5
    preference = np.empty((n_users, len(active)), dtype=np.float64)
    for start in range(0, n_users, _BLOCK_USERS):
        block = slice(start, start + _BLOCK_USERS)
        home = CATEGORY_DEPARTMENT[None, :] == first[block, None]
        home |= (CATEGORY_DEPARTMENT[None, :] == second[block, None]) & has_second[block, None]
        alpha = np.where(home, _HOME_ALPHA, _AWAY_ALPHA) * active[None, :]
        draws = rng.gamma(np.maximum(alpha, 1e-12)) * active[None, :]
        draws /= np.maximum(draws.sum(axis=1, keepdims=True), 1e-300)
        preference[block] = (1 - _BACKGROUND_SHARE) * draws + _BACKGROUND_SHARE * shares
    return preference


def _keys(preference: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row index + cumulative preference, flattened; built in place, block by block."""
    n_users = len(preference)
    for start in range(0, n_users, _BLOCK_USERS):
        block = preference[start : start + _BLOCK_USERS]
        np.cumsum(block, axis=1, out=block)
        block /= block[:, -1:]
        block[:, -1] = 1.0
        block += np.arange(start, start + len(block), dtype=np.float64)[:, None]
    return preference.ravel()


def build_shoppers(n_users: int, catalog: CatalogModel, rng: np.random.Generator) -> ShopperModel:
    """Draw the shoppers.

    Args:
        n_users: Number of shoppers (at least 1).
        catalog: The catalog (for the categories that hold items).
        rng: Random generator.

    Returns:
        The shopper model.
    """
    active = catalog.active_categories
    early = _preferences(n_users, active, rng)
    late = _preferences(n_users, active, rng)
    for start in range(0, n_users, _BLOCK_USERS):  # late = (1 - d) early + d late, in place
        block = slice(start, start + _BLOCK_USERS)
        late[block] *= _DRIFT
        late[block] += (1 - _DRIFT) * early[block]
    brand_reach = np.zeros(len(BRAND_NAMES))
    for category in CATEGORIES:
        for brand in category.brands:
            brand_reach[BRAND_NAMES.index(brand.en)] += 1.0
    brand_share = brand_reach / brand_reach.sum()
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    width = max(6, len(str(n_users)))
    return ShopperModel(
        raw_user_ids=[f"U{n:0{width}d}" for n in range(1, n_users + 1)],
        activity=activity / activity.sum(),
        early_keys=_keys(early),  # in place: `early` and `late` are not used after this
        late_keys=_keys(late),
        style=rng.standard_normal((n_users, STYLE_DIMENSIONS)),
        favourite_brand=rng.choice(len(BRAND_NAMES), size=n_users, p=brand_share),
        price_level=rng.normal(0.0, 0.8, size=n_users),
        price_sensitivity=rng.gamma(2.0, 0.4, size=n_users),
        chinese_share=rng.beta(2.0, 1.5, size=n_users),
    )


def sample_category(
    shoppers: ShopperModel,
    user: NDArray[np.int64],
    progress: NDArray[np.float64],
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """The category of each session, from the shopper's drifting preference.

    Args:
        shoppers: The shopper model.
        user: Shopper of each session.
        progress: Position of each session in the window, 0 (start) to 1 (end).
        rng: Random generator.

    Returns:
        Category index of each session.
    """
    n_categories = len(CATEGORIES)
    late = rng.random(len(user)) < progress
    keys = user + rng.random(len(user))
    early_pick = np.searchsorted(shoppers.early_keys, keys, side="right")
    late_pick = np.searchsorted(shoppers.late_keys, keys, side="right")
    picked = np.where(late, late_pick, early_pick) - user * n_categories
    return np.minimum(picked, n_categories - 1).astype(np.int64)


def sample_items(
    catalog: CatalogModel, category: NDArray[np.int64], count: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """`count` items per row drawn by popularity within each row's category.

    Args:
        catalog: The catalog model.
        category: Category of each row (must hold items).
        count: Items per row.
        rng: Random generator.

    Returns:
        Item indices, shape (rows, count).
    """
    keys = category[:, None] + rng.random((len(category), count))
    picked = np.searchsorted(catalog.category_keys, keys, side="right")
    return np.minimum(picked, catalog.n_items - 1).astype(np.int64)


def affinity(
    shoppers: ShopperModel,
    catalog: CatalogModel,
    user: NDArray[np.int64],
    item: NDArray[np.int64],
    progress: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Log-scale appeal of items to shoppers, beyond popularity.

    Inputs broadcast together: typically `user` and `progress` are (rows, 1) and `item`
    is (rows, k).

    Args:
        shoppers: The shopper model.
        catalog: The catalog model.
        user: Shopper indices.
        item: Item indices.
        progress: Time of the session in the window, 0 to 1.

    Returns:
        The affinity, broadcast shape of the inputs.
    """
    style = np.einsum("...d,...d->...", shoppers.style[user], catalog.style[item])
    style *= _STYLE_WEIGHT / np.sqrt(STYLE_DIMENSIONS)
    favourite = _FAVOURITE_BRAND_BONUS * (catalog.brand[item] == shoppers.favourite_brand[user])
    price_gap = catalog.price_z[item] - shoppers.price_level[user]
    price = -0.5 * shoppers.price_sensitivity[user] * price_gap**2
    trend = _TREND_WEIGHT * catalog.trend[item] * (progress - 0.5)
    result: NDArray[np.float64] = style + favourite + price + trend
    return result
