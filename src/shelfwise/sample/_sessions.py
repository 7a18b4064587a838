"""Shopping sessions, simulated for all sessions at once with array operations.

Each session belongs to a shopper (drawn by activity), starts at a time of day that
follows a daily traffic curve, and picks a category from the shopper's drifting
preference. Then:

- browse sessions (about 70%) view 1 to 16 items of the category, drawn by popularity
  and re-weighted by the shopper's affinity: `view` rows without a query;
- search sessions (about 30%) type a query for an item the shopper has in mind; the
  results page shows 10 items ranked by a noisy version of the true relevance, and the
  shopper clicks under position bias (examination 1/rank^0.8 times an attractiveness
  that grows with relevance and affinity): `click` rows carrying the query and the
  1-based position the item was shown at. A search without clicks leaves no row,
  because every row needs an item;
- about 10% of viewed or clicked items are added to the cart a little later (`cart`),
  and about 30% of those are bought (`purchase`, with the price as `value`). Cart and
  purchase rows keep the query and position of the click they follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shelfwise.sample._catalog import CATEGORY_DEPARTMENT, CatalogModel
from shelfwise.sample._categories import CATEGORIES
from shelfwise.sample._queries import draw_specs, grades
from shelfwise.sample._shoppers import ShopperModel, affinity, sample_category, sample_items

VIEW, CLICK, CART, PURCHASE = 0, 1, 2, 3
SEARCH_SHARE = 0.3
BROWSE_POOL = 16  # candidate items per browse session
RESULTS_SHOWN = 10
_VIEWS_GEOMETRIC_P = 0.28  # views per browse session ~ Geometric(p), mean 1/p
_CART_RATE, _PURCHASE_RATE = 0.10, 0.30
# Attractiveness of a search result by its true grade 0..3.
_ATTRACTIVENESS = np.array([0.02, 0.08, 0.3, 0.6])
# Local traffic by hour of day (UTC+8): quiet at night, peaks at lunch and evening.
_HOURLY_TRAFFIC = np.array(
    [3, 2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 6, 6, 6, 7, 9, 11, 12, 10, 6], dtype=np.float64
)
_UTC_OFFSET_HOURS = 8


@dataclass(frozen=True)
class Sessions:
    """Simulated events (one entry per row) and their sessions.

    Attributes:
        session: Session index of each event.
        user: Shopper index of each event.
        item: Item index of each event.
        kind: VIEW, CLICK, CART or PURCHASE.
        timestamp: Unix seconds.
        query: Query code (see `QuerySpec.encode`), -1 for none.
        session_start: Start time of each session.
        session_user: Shopper of each session.
        position: 1-based rank on the results page of the click an event comes from
            (its own for a click, the click's for the cart and purchase after it), -1
            for events without a query.
    """

    session: NDArray[np.int64]
    user: NDArray[np.int64]
    item: NDArray[np.int64]
    kind: NDArray[np.int64]
    timestamp: NDArray[np.int64]
    query: NDArray[np.int64]
    session_start: NDArray[np.int64]
    session_user: NDArray[np.int64]
    position: NDArray[np.int64]


@dataclass
class _Rows:
    """Engaged rows (views or clicks) before the funnel is applied."""

    session: NDArray[np.int64]
    item: NDArray[np.int64]
    time: NDArray[np.float64]
    query: NDArray[np.int64]
    appeal: NDArray[np.float64]
    kind: int
    position: NDArray[np.int64]  # 1-based rank on the results page, -1 without a query


def _distinct_rows(items: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Sort each row and flag the first copy of every item."""
    ordered = np.sort(items, axis=1)
    first = np.ones(ordered.shape, dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return ordered, first


def _browse(
    catalog: CatalogModel,
    shoppers: ShopperModel,
    session: NDArray[np.int64],
    user: NDArray[np.int64],
    category: NDArray[np.int64],
    start: NDArray[np.int64],
    progress: NDArray[np.float64],
    rng: np.random.Generator,
) -> _Rows:
    pool, distinct = _distinct_rows(sample_items(catalog, category, BROWSE_POOL, rng))
    appeal = affinity(shoppers, catalog, user[:, None], pool, progress[:, None])
    score = np.where(distinct, appeal + rng.gumbel(size=pool.shape), -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    pool = np.take_along_axis(pool, order, axis=1)
    appeal = np.take_along_axis(appeal, order, axis=1)
    n_views = np.minimum(rng.geometric(_VIEWS_GEOMETRIC_P, size=len(session)), distinct.sum(1))
    viewed = np.arange(BROWSE_POOL)[None, :] < n_views[:, None]
    gaps = 5.0 + rng.exponential(45.0, size=pool.shape)
    offsets = np.cumsum(gaps, axis=1) - gaps
    rows = np.broadcast_to(session[:, None], pool.shape)
    return _Rows(
        session=rows[viewed],
        item=pool[viewed],
        time=(start[:, None] + offsets)[viewed],
        query=np.full(int(viewed.sum()), -1, dtype=np.int64),
        appeal=appeal[viewed],
        kind=VIEW,
        position=np.full(int(viewed.sum()), -1, dtype=np.int64),
    )


def _results_pool(
    catalog: CatalogModel,
    category: NDArray[np.int64],
    target: NDArray[np.int64],
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Items a search engine would consider: the target, its category, its department,
    and a few popular items from anywhere."""
    same_category = sample_items(catalog, category, 19, rng)
    peers = [np.flatnonzero(CATEGORY_DEPARTMENT == d) for d in CATEGORY_DEPARTMENT]
    active = catalog.active_categories
    peer_table = np.full((len(CATEGORIES), max(len(p) for p in peers)), -1, dtype=np.int64)
    peer_count = np.zeros(len(CATEGORIES), dtype=np.int64)
    for c, members in enumerate(peers):
        members = members[active[members]]
        peer_table[c, : len(members)] = members
        peer_count[c] = len(members)
    slot = (rng.random((len(category), 5)) * peer_count[category][:, None]).astype(np.int64)
    peer_category = peer_table[category[:, None], slot]
    same_department = np.searchsorted(
        catalog.category_keys, peer_category + rng.random(peer_category.shape), side="right"
    )
    anywhere = np.searchsorted(catalog.global_keys, rng.random((len(category), 5)), side="right")
    pool = np.concatenate([target[:, None], same_category, same_department, anywhere], axis=1)
    result: NDArray[np.int64] = np.minimum(pool, catalog.n_items - 1).astype(np.int64)
    return result


def _search(
    catalog: CatalogModel,
    shoppers: ShopperModel,
    session: NDArray[np.int64],
    user: NDArray[np.int64],
    category: NDArray[np.int64],
    start: NDArray[np.int64],
    progress: NDArray[np.float64],
    rng: np.random.Generator,
) -> _Rows:
    candidates, distinct = _distinct_rows(sample_items(catalog, category, 12, rng))
    appeal = affinity(shoppers, catalog, user[:, None], candidates, progress[:, None])
    score = np.where(distinct, appeal + rng.gumbel(size=candidates.shape), -np.inf)
    target = candidates[np.arange(len(session)), np.argmax(score, axis=1)]
    spec = draw_specs(catalog, target, shoppers.chinese_share[user], rng)
    code = spec.encode()

    pool, distinct = _distinct_rows(_results_pool(catalog, category, target, rng))
    grade = grades(
        catalog,
        spec.category[:, None],
        spec.color[:, None],
        spec.brand[:, None],
        spec.fits[:, None],
        pool,
    )
    popular = catalog.log_popularity[pool]
    popular = (popular - catalog.log_popularity.mean()) / max(catalog.log_popularity.std(), 1e-9)
    ranking = grade + rng.normal(0.0, 0.8, size=pool.shape) + 0.25 * popular
    ranking = np.where(distinct, ranking, -np.inf)
    order = np.argsort(-ranking, axis=1, kind="stable")[:, :RESULTS_SHOWN]
    shown = np.take_along_axis(pool, order, axis=1)
    shown_grade = np.take_along_axis(grade, order, axis=1)
    valid = np.isfinite(np.take_along_axis(ranking, order, axis=1))

    appeal = affinity(shoppers, catalog, user[:, None], shown, progress[:, None])
    lift = np.exp(0.5 * appeal)
    lift /= lift[valid].mean() if valid.any() else 1.0
    examination = 1.0 / np.arange(1, shown.shape[1] + 1) ** 0.8
    click_probability = np.minimum(examination * _ATTRACTIVENESS[shown_grade] * lift, 0.95)
    clicked = valid & (rng.random(shown.shape) < click_probability)
    gaps = 3.0 + rng.exponential(20.0, size=shown.shape)
    offsets = np.cumsum(gaps, axis=1)
    rows = np.broadcast_to(session[:, None], shown.shape)
    rank = np.broadcast_to(np.arange(1, shown.shape[1] + 1, dtype=np.int64), shown.shape)
    return _Rows(
        session=rows[clicked],
        item=shown[clicked],
        time=(start[:, None] + offsets)[clicked],
        query=np.broadcast_to(code[:, None], shown.shape)[clicked],
        appeal=appeal[clicked],
        kind=CLICK,
        position=rank[clicked],
    )


def _follow_up(
    rows: _Rows,
    weight: NDArray[np.float64],
    rate: float,
    mean_delay: float,
    kind: int,
    rng: np.random.Generator,
) -> _Rows:
    """Keep about `rate` of the rows (more where `weight` is high), a little later."""
    if len(rows.item) == 0:
        return rows
    probability = np.minimum(rate * weight / weight.mean(), 0.9)
    kept = rng.random(len(rows.item)) < probability
    delay = 10.0 + rng.exponential(mean_delay, size=int(kept.sum()))
    return _Rows(
        session=rows.session[kept],
        item=rows.item[kept],
        time=rows.time[kept] + delay,
        query=rows.query[kept],
        appeal=rows.appeal[kept],
        kind=kind,
        position=rows.position[kept],
    )


def _standardise(values: NDArray[np.float64]) -> NDArray[np.float64]:
    if len(values) == 0:
        return values
    result: NDArray[np.float64] = (values - values.mean()) / max(float(values.std()), 1e-9)
    return result


def simulate(
    catalog: CatalogModel,
    shoppers: ShopperModel,
    *,
    n_sessions: int,
    window_end: int,
    window_days: int,
    rng: np.random.Generator,
) -> Sessions:
    """Simulate `n_sessions` sessions (some leave no rows: searches without clicks).

    Args:
        catalog: The catalog model.
        shoppers: The shopper model.
        n_sessions: Number of sessions.
        window_end: Unix time at which the window ends.
        window_days: Length of the window in days.
        rng: Random generator.

    Returns:
        The events, unsorted.
    """
    window = window_days * 86_400
    user = rng.choice(shoppers.n_users, size=n_sessions, p=shoppers.activity).astype(np.int64)
    day = rng.integers(0, window_days, size=n_sessions)
    hour = rng.choice(24, size=n_sessions, p=_HOURLY_TRAFFIC / _HOURLY_TRAFFIC.sum())
    second = rng.integers(0, 3600, size=n_sessions)
    offset = (day * 86_400 + (hour - _UTC_OFFSET_HOURS) * 3600 + second) % window
    start = (window_end - window + offset).astype(np.int64)
    progress = offset / window
    category = sample_category(shoppers, user, progress, rng)
    is_search = rng.random(n_sessions) < SEARCH_SHARE
    parts = []
    for mask, simulate_part in ((~is_search, _browse), (is_search, _search)):
        index = np.flatnonzero(mask).astype(np.int64)
        parts.append(
            simulate_part(
                catalog,
                shoppers,
                index,
                user[index],
                category[index],
                start[index],
                progress[index],
                rng,
            )
        )
    engaged = _Rows(
        session=np.concatenate([p.session for p in parts]),
        item=np.concatenate([p.item for p in parts]),
        time=np.concatenate([p.time for p in parts]),
        query=np.concatenate([p.query for p in parts]),
        appeal=np.concatenate([p.appeal for p in parts]),
        kind=VIEW,
        position=np.concatenate([p.position for p in parts]),
    )
    engaged_kind = np.concatenate([np.full(len(p.item), p.kind, dtype=np.int64) for p in parts])
    carts = _follow_up(
        engaged, np.exp(0.6 * _standardise(engaged.appeal)), _CART_RATE, 60.0, CART, rng
    )
    sensitivity = shoppers.price_sensitivity[user[carts.session]]
    purchase_weight = np.exp(
        0.5 * _standardise(carts.appeal) - 0.3 * sensitivity * catalog.price_z[carts.item]
    )
    purchases = _follow_up(carts, purchase_weight, _PURCHASE_RATE, 240.0, PURCHASE, rng)
    groups = (engaged, carts, purchases)
    kinds = [engaged_kind] + [np.full(len(g.item), g.kind, dtype=np.int64) for g in groups[1:]]
    session = np.concatenate([g.session for g in groups])
    return Sessions(
        session=session,
        user=user[session],
        item=np.concatenate([g.item for g in groups]),
        kind=np.concatenate(kinds),
        timestamp=np.concatenate([g.time for g in groups]).astype(np.int64),
        query=np.concatenate([g.query for g in groups]),
        session_start=start,
        session_user=user,
        position=np.concatenate([g.position for g in groups]),
    )
