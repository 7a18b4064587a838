"""Features of (user, candidate item) pairs for the click model, shared by training and serving.

Every feature is computed from three things only: the user's weighted history row (the
same CSR rows retrievers score), the retriever's score of the item, and per-item /
per-user arrays saved with the model (`ItemTable`, `UserTable` with its per-(user, item)
last purchases, `shelfwise.ranking.repurchase.PurchaseTable`). Training, offline
evaluation and the online engine call the same `pair_features`, so a served probability
is computed exactly as the evaluated one.

Inputs:
    histories: CSR (batch, n_items) of non-negative interaction weights.
    rows, item_indices: int (m,) — pair p is (histories row rows[p], item item_indices[p]).

Features (`FEATURE_NAMES`, in column order; NaN means "unknown", which LightGBM routes
as missing and the MLP replaces by the training mean):

=========================== ==============================================================
retriever_score             the retriever's score of the item for this user
retriever_rank              1 + unseen items scored strictly higher (clipped at N)
retriever_score_gap         the user's best unseen score minus this score
item_popularity             log1p(distinct users of the item per 1,000 active users)
item_weight_share           log1p(weighted events of the item per 1,000 units of weight): the
                            popularity retriever's own score, a co-score next to the retriever's
item_recent_events          log1p(events of the item in the 7 days before the reference time)
item_log_price              log1p(price)
price_vs_user               item_log_price minus the weighted mean log price of the history
category_share              share of the history's weight in the item's category
brand_share                 share of the history's weight in the item's brand
user_history_size           log1p(distinct items in the history)
user_history_weight         log1p(total weight of the history)
item_days_since_last        days from the item's last event to the reference time
user_days_since_last        days from the user's last event to the reference time
days_since_user_bought_item days from the user's newest purchase of the item to the reference
                            time; NaN when the user never bought it (repeat purchases)
repurchase_cycle_ratio      days_since_user_bought_item / the item's typical repurchase gap
                            (the median, over users who bought it at least twice, of their
                            median gap in days): about 1 when the user is "due" to buy it
                            again; NaN when either is unknown
=========================== ==============================================================

The last two only vary among candidates the user has bought, i.e. when the repeat
policy lets lists hold seen items (`models.repeat_policy` resolved to `allow`); under
`exclude` they are NaN throughout and the model learns nothing from them. A model
saved with an older, shorter feature list (`ClickModel.feature_names`) reads only its
own columns of this matrix.

The tables are built "as of" a history cutoff: from train events when training (valid
labels), from train + valid events for the test evaluation, and from every event for the
served model, whose histories hold every event too. Counts are normalised per 1,000
users / units of weight so that tables of periods of different length stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.contracts import (
    BRAND,
    CATEGORY,
    ITEM_INDEX,
    PRICE,
    TIMESTAMP,
    USER_INDEX,
    WEIGHT,
    FloatArray,
    IntArray,
)
from shelfwise.ranking.repurchase import (
    PurchaseTable,
    purchase_table,
    purchases_of,
    repurchase_columns,
    typical_gaps,
)

Float64Array = np.ndarray[Any, np.dtype[np.float64]]

FEATURE_NAMES: Final[tuple[str, ...]] = (
    "retriever_score",
    "retriever_rank",
    "retriever_score_gap",
    "item_popularity",
    "item_weight_share",
    "item_recent_events",
    "item_log_price",
    "price_vs_user",
    "category_share",
    "brand_share",
    "user_history_size",
    "user_history_weight",
    "item_days_since_last",
    "user_days_since_last",
    "days_since_user_bought_item",
    "repurchase_cycle_ratio",
)
# The repeat-purchase columns (`ranking.repurchase_features: false` trains without them).
REPURCHASE_FEATURES: Final[tuple[str, ...]] = (
    "days_since_user_bought_item",
    "repurchase_cycle_ratio",
)
RECENT_DAYS: Final = 7.0
_DAY: Final = 86_400.0


# The ItemTable fields, in the order they are saved.
ITEM_FIELDS: Final = (
    "popularity",
    "weight_share",
    "recent_events",
    "log_price",
    "days_since_last",
    "category",
    "brand",
    "typical_gap",
)


@dataclass(frozen=True)
class ItemTable:
    """Per-item arrays (index = item_index) the pair features read.

    Attributes:
        popularity: log1p(distinct users per 1,000 active users).
        weight_share: log1p(weighted events per 1,000 units of total weight).
        recent_events: log1p(events in the `RECENT_DAYS` before the reference time).
        log_price: log1p(price), NaN when unknown.
        days_since_last: days from the item's last event to the reference time, NaN never.
        category: category code (-1 unknown); codes are only compared with each other.
        brand: brand code (-1 unknown).
        typical_gap: typical repurchase gap in days (`repurchase.typical_gaps`), NaN
            when no user bought the item twice (or the table predates the feature).
    """

    popularity: FloatArray
    weight_share: FloatArray
    recent_events: FloatArray
    log_price: FloatArray
    days_since_last: FloatArray
    category: IntArray
    brand: IntArray
    # empty = unknown for every item (a table built before repurchase features)
    typical_gap: FloatArray = field(default_factory=lambda: np.empty(0, dtype=np.float32))

    def __post_init__(self) -> None:
        """Widen an empty `typical_gap` to NaN for every item."""
        if self.typical_gap.size == 0 and self.popularity.size:
            unknown = np.full(self.popularity.size, np.nan, dtype=np.float32)
            object.__setattr__(self, "typical_gap", unknown)  # frozen: set once, here

    @property
    def n_items(self) -> int:
        """Size of the item space."""
        return int(self.popularity.size)

    def arrays(self) -> dict[str, np.ndarray[Any, Any]]:
        """Every array by field name (what the model folder stores)."""
        return {name: getattr(self, name) for name in ITEM_FIELDS}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray[Any, Any]]) -> ItemTable:
        """Rebuild from `arrays()` output (dtypes are normalised).

        A missing `typical_gap` (a model saved before repurchase features) is all NaN.
        """
        arrays = {"typical_gap": np.empty(0, dtype=np.float32), **arrays}
        floats = {
            name: np.asarray(arrays[name], dtype=np.float32)
            for name in ITEM_FIELDS
            if name not in ("category", "brand")
        }
        return ItemTable(
            **floats,
            category=np.asarray(arrays["category"], dtype=np.int64),
            brand=np.asarray(arrays["brand"], dtype=np.int64),
        )


@dataclass(frozen=True)
class UserTable:
    """When each user was last seen (index = user_index), and the reference time.

    Attributes:
        last_seen: unix seconds of each user's last event, NaN for users without one.
        reference_time: unix seconds "now" of the table: its newest event.
        purchases: each (user, item) pair's newest purchase; empty for a model saved
            before repurchase features.
    """

    last_seen: Float64Array
    reference_time: float
    purchases: PurchaseTable = field(default_factory=lambda: PurchaseTable.empty(0))

    def days_since_bought(self, user_indices: IntArray, item_indices: IntArray) -> FloatArray:
        """Days from each pair's newest purchase to the reference time; NaN when never.

        Args:
            user_indices: int (m,) the user of each pair (-1 unknown).
            item_indices: int (m,) the item of each pair.
        """
        last = self.purchases.last_purchase(user_indices, item_indices)
        return ((self.reference_time - last) / _DAY).astype(np.float32)

    def days_since_last(self, user_indices: IntArray) -> FloatArray:
        """Days from each user's last event to the reference time; NaN for index < 0."""
        users = np.asarray(user_indices, dtype=np.int64)
        known = (users >= 0) & (users < self.last_seen.size)
        days = np.full(users.shape, np.nan, dtype=np.float64)
        days[known] = (self.reference_time - self.last_seen[users[known]]) / _DAY
        return days.astype(np.float32)


def build_tables(
    items: pl.DataFrame,
    interactions: pl.DataFrame,
    *,
    n_users: int,
) -> tuple[ItemTable, UserTable]:
    """The item and user tables of a set of events (e.g. the train split).

    Args:
        items: the catalog in item_index order (`category`, `brand`, `price` optional).
        interactions: USER_INDEX, ITEM_INDEX, TIMESTAMP, WEIGHT (and EVENT_TYPE, for
            the repurchase tables) of the events the tables describe; events of weight
            0 (searches) are ignored.
        n_users: size of the user space.
    """
    n_items = items.height
    purchases = purchases_of(interactions.filter(pl.col(WEIGHT) > 0))
    events = interactions.filter(pl.col(WEIGHT) > 0).select(
        pl.col(USER_INDEX).cast(pl.Int64),
        pl.col(ITEM_INDEX).cast(pl.Int64),
        pl.col(TIMESTAMP).cast(pl.Int64),
        pl.col(WEIGHT).cast(pl.Float64),
    )
    reference = float(events[TIMESTAMP].max()) if events.height else 0.0  # type: ignore[arg-type]
    recent_from = reference - RECENT_DAYS * _DAY
    per_item = events.group_by(ITEM_INDEX).agg(
        pl.col(USER_INDEX).n_unique().alias("users"),
        pl.col(WEIGHT).sum().alias("weight"),
        (pl.col(TIMESTAMP) >= recent_from).sum().alias("recent"),
        pl.col(TIMESTAMP).max().alias("last"),
    )
    index = per_item[ITEM_INDEX].to_numpy()
    active_users = max(int(events[USER_INDEX].n_unique()), 1)
    total_weight = max(float(events[WEIGHT].sum()), 1e-12)

    def scatter(values: np.ndarray[Any, Any], fill: float) -> Float64Array:
        out = np.full(n_items, fill, dtype=np.float64)
        out[index] = values
        return out

    users_per_item = scatter(per_item["users"].to_numpy(), 0.0)
    weight_per_item = scatter(per_item["weight"].to_numpy(), 0.0)
    recent = scatter(per_item["recent"].to_numpy(), 0.0)
    last = scatter(per_item["last"].to_numpy().astype(np.float64), np.nan)
    item_table = ItemTable(
        popularity=np.log1p(1000.0 * users_per_item / active_users).astype(np.float32),
        weight_share=np.log1p(1000.0 * weight_per_item / total_weight).astype(np.float32),
        recent_events=np.log1p(recent).astype(np.float32),
        log_price=_log_price(items),
        days_since_last=((reference - last) / _DAY).astype(np.float32),
        category=_codes(items, CATEGORY),
        brand=_codes(items, BRAND),
        typical_gap=typical_gaps(purchases, n_items=n_items),
    )
    per_user = events.group_by(USER_INDEX).agg(pl.col(TIMESTAMP).max().alias("last"))
    last_seen = np.full(n_users, np.nan, dtype=np.float64)
    last_seen[per_user[USER_INDEX].to_numpy()] = per_user["last"].to_numpy().astype(np.float64)
    return item_table, UserTable(
        last_seen=last_seen,
        reference_time=reference,
        purchases=purchase_table(purchases, n_items=n_items),
    )


def pair_features(
    table: ItemTable,
    histories: sp.csr_matrix,
    rows: IntArray,
    item_indices: IntArray,
    *,
    retriever_scores: FloatArray | None = None,
    retriever_ranks: FloatArray | None = None,
    top_scores: FloatArray | None = None,
    user_days_since_last: FloatArray | None = None,
    days_since_bought: FloatArray | None = None,
) -> FloatArray:
    """The (m, len(FEATURE_NAMES)) float32 feature matrix of m (user, item) pairs.

    Args:
        table: the item arrays.
        histories: CSR (batch, n_items) history rows.
        rows: int (m,) the history row of each pair.
        item_indices: int (m,) the item of each pair.
        retriever_scores: (m,) the retriever's score of each pair; None = unknown.
        retriever_ranks: (m,) `unseen_ranks` of the pairs; None = unknown.
        top_scores: (batch,) each user's best unseen score; None = unknown.
        user_days_since_last: (batch,) per history row; None = unknown.
        days_since_bought: (m,) per pair (`UserTable.days_since_bought`); None = unknown.
    """
    rows = np.asarray(rows, dtype=np.int64)
    items = np.asarray(item_indices, dtype=np.int64)
    m = rows.size
    weights = sp.csr_matrix(histories, dtype=np.float64)
    batch = weights.shape[0]
    # every stored history entry once: its row, item and (positive) weight; work stays
    # proportional to the history size, not to the catalog size
    entry_rows = np.repeat(np.arange(batch, dtype=np.int64), np.diff(weights.indptr))
    entry_items = weights.indices.astype(np.int64)
    entry_weights = np.where(weights.data > 0, weights.data, 0.0)
    total = np.bincount(entry_rows, weights=entry_weights, minlength=batch)
    size = np.bincount(entry_rows, weights=(entry_weights > 0), minlength=batch)

    entry_price = table.log_price[entry_items].astype(np.float64)
    priced = ~np.isnan(entry_price)
    price_sum = np.bincount(
        entry_rows, weights=np.where(priced, entry_price * entry_weights, 0.0), minlength=batch
    )
    price_weight = np.bincount(entry_rows, weights=priced * entry_weights, minlength=batch)
    with np.errstate(invalid="ignore", divide="ignore"):
        user_price = np.where(price_weight > 0, price_sum / price_weight, np.nan)
        share_denominator = np.where(total > 0, total, np.inf)

    def share(codes: IntArray) -> Float64Array:
        entry_codes = codes[entry_items]
        known = (entry_codes >= 0) & (entry_weights > 0)
        per_code = sp.csr_matrix(
            (entry_weights[known], (entry_rows[known], entry_codes[known])),
            shape=(batch, int(codes.max(initial=-1)) + 1),
        )  # duplicates (row, code) are summed
        per_code.sort_indices()
        values = _lookup(per_code, rows, codes[items])
        return values / share_denominator[rows]

    nan = np.full(m, np.nan, dtype=np.float64)
    scores = nan if retriever_scores is None else np.asarray(retriever_scores, np.float64)
    ranks = nan if retriever_ranks is None else np.asarray(retriever_ranks, np.float64)
    gap = nan if top_scores is None else np.asarray(top_scores, np.float64)[rows] - scores
    user_days = (
        nan if user_days_since_last is None else np.asarray(user_days_since_last, np.float64)[rows]
    )
    bought_days, cycle_ratio = repurchase_columns(
        nan if days_since_bought is None else np.asarray(days_since_bought, np.float64),
        table.typical_gap[items],
    )
    columns = (
        scores,
        ranks,
        gap,
        table.popularity[items],
        table.weight_share[items],
        table.recent_events[items],
        table.log_price[items],
        table.log_price[items] - user_price[rows],
        share(table.category),
        share(table.brand),
        np.log1p(size)[rows],
        np.log1p(total)[rows],
        table.days_since_last[items],
        user_days,
        bought_days,
        cycle_ratio,
    )
    return np.column_stack([np.asarray(c, dtype=np.float32) for c in columns]).reshape(
        m, len(FEATURE_NAMES)
    )


def unseen_ranks(
    scores: FloatArray,
    histories: sp.csr_matrix,
    rows: IntArray,
    item_indices: IntArray,
    *,
    limit: int | None = None,
) -> FloatArray:
    """1 + the number of the user's unseen items scored strictly higher than the pair's item.

    Tied items share a rank ("1224" ranking), so the rank does not depend on how a
    top-k selection broke ties: it equals `candidate_ranks` of the retriever's list.
    A seen item gets the rank it would have among the unseen ones.

    Args:
        scores: dense (batch, n_items) retriever scores.
        histories: CSR (batch, n_items); stored entries are the seen items.
        rows, item_indices: the pairs, as in `pair_features`.
        limit: return min(rank, limit); only the `limit` best unseen scores are then
            sorted (a partition instead of a sort of the catalog).
    """
    values = np.asarray(scores, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    items = np.asarray(item_indices, dtype=np.int64)
    ranks = np.empty(rows.size, dtype=np.float32)
    n_items = values.shape[1]
    # One vectorised pass per user of the batch (serving asks for one user at a time).
    for row in np.unique(rows):
        seen = np.zeros(n_items, dtype=np.bool_)
        seen[histories.indices[histories.indptr[row] : histories.indptr[row + 1]]] = True
        negated = -values[row][~seen]
        if limit is not None and limit < negated.size:
            # the `limit` best scores hold every score better than a rank-<limit item
            negated = np.partition(negated, limit - 1)[:limit]
        ascending = np.sort(negated)  # best score first
        pairs = np.flatnonzero(rows == row)
        found = np.searchsorted(ascending, -values[row, items[pairs]], side="left") + 1
        ranks[pairs] = found if limit is None else np.minimum(found, limit)
    return ranks


def candidate_ranks(sorted_scores: FloatArray) -> FloatArray:
    """`unseen_ranks` of every entry of candidate lists sorted best first.

    Every item scored strictly higher than a candidate is itself a candidate, so the
    rank is 1 + the position of the first entry with an equal score.

    Args:
        sorted_scores: (batch, N) scores, non-increasing along each row.
    """
    scores = np.asarray(sorted_scores)
    positions = np.arange(scores.shape[1], dtype=np.int64)
    starts = np.ones(scores.shape, dtype=np.bool_)
    starts[:, 1:] = scores[:, 1:] != scores[:, :-1]
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    ranks: FloatArray = (first + 1).astype(np.float32)
    return ranks


def _lookup(matrix: sp.csr_matrix, rows: IntArray, cols: IntArray) -> Float64Array:
    """matrix[rows[p], cols[p]] for every p (0 where not stored or cols[p] < 0)."""
    n_cols = matrix.shape[1]
    stored_rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys = stored_rows * n_cols + matrix.indices.astype(np.int64)
    wanted = rows * n_cols + np.where(cols >= 0, cols, 0)
    values = np.zeros(rows.size, dtype=np.float64)
    if keys.size == 0:
        return values
    positions = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    found = (keys[positions] == wanted) & (cols >= 0)
    values[found] = matrix.data[positions[found]]
    return values


def _codes(items: pl.DataFrame, column: str) -> IntArray:
    """Dense codes of a string column (sorted distinct values), -1 for null/missing."""
    if column not in items.columns:
        return np.full(items.height, -1, dtype=np.int64)
    values = items[column].cast(pl.String).str.strip_chars().str.to_lowercase()
    values = values.replace("", None)
    distinct = values.drop_nulls().unique().sort()
    mapping = dict(zip(distinct.to_list(), range(distinct.len()), strict=True))
    codes = values.replace_strict(mapping, default=-1, return_dtype=pl.Int64)
    return codes.to_numpy().astype(np.int64)


def _log_price(items: pl.DataFrame) -> FloatArray:
    if PRICE not in items.columns:
        return np.full(items.height, np.nan, dtype=np.float32)
    price = items[PRICE].cast(pl.Float64).to_numpy().astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(price >= 0, np.log1p(np.abs(price)), np.nan).astype(np.float32)
