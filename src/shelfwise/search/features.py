"""Features of (query, candidate item) pairs for the search re-ranker (LambdaMART).

Training, offline evaluation and serving call the same `search_features`, so a served
score is computed exactly as the evaluated one. Everything here is a pure function of
its arguments; the per-item text is tokenized once, into a `SearchItemTable`. One
concern (the feature table and its columns), kept in one module past 500 lines so
that every feature's definition sits next to its name.

Inputs:
    query: the query text; `corrections` (token -> catalog token, what
        `BM25Search.corrections` returns) replaces misspelled tokens before the text
        features compare the query with item text.
    item_indices: int (n_cand,) the candidates.
    signals: retriever outputs per candidate, (n_cand,) each, by name from
        `SIGNAL_NAMES`; a signal not given is NaN ("unknown", which LightGBM routes as
        missing), so a retriever that is switched off or not built yet (dense) simply
        leaves its columns empty.
    table: `SearchItemTable` of the catalog (`SearchItemTable.from_frame(items)` on
        `features/items.parquet`, plus popularity counts).
    affinity: the user's `UserAffinity` (None: anonymous, affinities 0).

Features (`SEARCH_FEATURE_NAMES`, in column order):

======================== ===============================================================
bm25_title ...           BM25 score of one field, unweighted (`BM25Search.field_scores`):
bm25_description         title, brand, category, description
bm25_score               the field-weighted BM25 score (`BM25Search.score`)
dense_cosine             cosine of the query and item embeddings
dense_title_cosine       cosine of the query and the item's title-only embedding
dense_prf5_cosine,       pseudo-relevance feedback: cosine of the item with the centroid
dense_prf10_cosine       of the dense top 5 / top 10 (where the query's products lie)
fused_prf10_cosine       the same with the fused top 10
title_prf10_cosine       title embeddings, centroid of the dense top 10's titles
rrf_score                reciprocal rank fusion score of the candidate lists
bm25_rank, dense_rank    1-based rank in each retriever's list, NaN when not in it
rrf_rank                 1-based rank in the fused list
query_token_count        tokens of the (corrected) query
title_exact_match        1 when the query's tokens are exactly the title's tokens
title_contains_query     1 when the normalised query text is a substring of the title
title_token_share        share of the query's distinct tokens found in the title
title_bigram_share       share of the query's adjacent token pairs adjacent in the title
                         (phrase match: "copper pipe" vs "pipe ... copper"), 0 for a
                         one-token query
title_char_share         share of the query's character n-grams found in the title
                         (`char_grams`: trigrams of the normalised text, bigrams of
                         Chinese/Japanese/Korean runs; `char_share`): a fuzzy match
                         that survives misspellings, plurals and split compounds
                         ("refridgerator", "back pack") where tokens do not
query_unit_share         share of the query's numbers with units, dimensions and model
                         numbers (`numeric_units`: "1/2in", "10-3", "12v") that the
                         title has; NaN when the query has none
query_unit_conflict      1 when the query and the title both name numbers with units
                         and share none ("12v" vs "18v"); 0 otherwise
query_mentions_category  1 when every token of one of the item's category names (a
                         category "笔记本电脑 / Laptops" has two) is in the query
query_mentions_brand     the same for the brand ("Lenovo/联想")
log_popularity           log1p(popularity count), NaN when no counts were given
log_price                log1p(price), NaN when unknown
price_missing            1 when the price is unknown (null, NaN or negative)
user_category_affinity   share of the user's history in the item's category, 0 without
user_brand_affinity      share of the user's history in the item's brand, 0 without
extra<k>_cosine, ...     with k feature encoders (`models.dense.feature_encoders`, none
                         by default), per encoder k = 1, 2, ... the four signals of
                         `EXTRA_ENCODER_SIGNALS`, after every column above
======================== ===============================================================

Feature encoders: a second sentence encoder disagrees with the first where one of them
is wrong, which the re-ranker can use. Encoder k adds `extra<k>_cosine` (query vs item
text), `extra<k>_title_cosine` (vs title alone), `extra<k>_prf10_cosine` (item vs the
centroid of the encoder's own top 10 items) and `extra<k>_title_prf10_cosine` (the same
over titles). `search_feature_names(k)` lists the columns of a model with k of them.

Relations:
    `shelfwise.ranking.features` builds the click model's (user, item) features for
    recommendations; this module builds (query, item) features for search.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from shelfwise.contracts import (
    BRAND,
    CATEGORY,
    ITEM_INDEX,
    PRICE,
    TITLE,
    USER_INDEX,
    WEIGHT,
    FloatArray,
    IntArray,
)
from shelfwise.errors import DataError
from shelfwise.text.tokenize import (
    CJK_RANGES,
    MAX_QUERY_TOKENS,
    bound_query,
    numeric_units,
    tokenize,
)

BM25_FIELDS: Final[tuple[str, ...]] = ("title", "brand", "category", "description")
SIGNAL_NAMES: Final[tuple[str, ...]] = (
    *(f"bm25_{name}" for name in BM25_FIELDS),
    "bm25_score",
    "dense_cosine",
    "dense_title_cosine",
    "dense_prf5_cosine",
    "dense_prf10_cosine",
    "fused_prf10_cosine",
    "title_prf10_cosine",
    "rrf_score",
    "bm25_rank",
    "dense_rank",
    "rrf_rank",
)
TEXT_FEATURE_NAMES: Final[tuple[str, ...]] = (
    "query_token_count",
    "title_exact_match",
    "title_contains_query",
    "title_token_share",
    "title_bigram_share",
    "title_char_share",
    "query_unit_share",
    "query_unit_conflict",
    "query_mentions_category",
    "query_mentions_brand",
)
ITEM_FEATURE_NAMES: Final[tuple[str, ...]] = ("log_popularity", "log_price", "price_missing")
USER_FEATURE_NAMES: Final[tuple[str, ...]] = ("user_category_affinity", "user_brand_affinity")
SEARCH_FEATURE_NAMES: Final[tuple[str, ...]] = (
    *SIGNAL_NAMES,
    *TEXT_FEATURE_NAMES,
    *ITEM_FEATURE_NAMES,
    *USER_FEATURE_NAMES,
)
EXTRA_ENCODER_SIGNALS: Final[tuple[str, ...]] = (
    "cosine",
    "title_cosine",
    "prf10_cosine",
    "title_prf10_cosine",
)
# How a category or brand lists its alternative names: "笔记本电脑 / Laptops",
# "Lenovo/联想", "Home > Kitchen", "Levi's | 李维斯".
_NAME_SEPARATORS: Final = re.compile(r"\s*[/|>;,，、]\s*")
_NOT_WORD: Final = re.compile(r"[\W_]+")
# Scripts written without spaces between words: the analyzer's Han ranges, plus
# kana and Hangul.
_CJK_RUN: Final = re.compile(f"[{CJK_RANGES}\u3040-\u30ff\uac00-\ud7af]+")
_NONE: Final[frozenset[str]] = frozenset()


def extra_signal_names(extra_encoders: int) -> tuple[str, ...]:
    """The signal names of `extra_encoders` feature encoders: `extra<k>_<signal>`, k from 1.

    Raises:
        DataError: a negative count.
    """
    if extra_encoders < 0:
        raise DataError(f"search features: extra_encoders must be >= 0, got {extra_encoders}")
    return tuple(
        f"extra{number}_{signal}"
        for number in range(1, extra_encoders + 1)
        for signal in EXTRA_ENCODER_SIGNALS
    )


def search_feature_names(extra_encoders: int = 0) -> tuple[str, ...]:
    """The feature columns with `extra_encoders` feature encoders (0: `SEARCH_FEATURE_NAMES`)."""
    return (*SEARCH_FEATURE_NAMES, *extra_signal_names(extra_encoders))


def normalise_text(text: str | None) -> str:
    """NFKC, lower case, every run of punctuation or space as one space, stripped."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _NOT_WORD.sub(" ", folded).strip()


def char_grams(text: str) -> frozenset[str]:
    """Character n-grams of a `normalise_text` query, for the `title_char_share` feature.

    Trigrams of the text with a space either side (" ref", "efr", ..., "r m", ...):
    a misspelt, plural or split word still shares most of its trigrams with the right
    one, and trigrams across a space keep some word order. Chinese, Japanese and
    Korean runs, written without spaces, give their character bigrams instead ("华为手机"
    -> 华为, 为手, 手机); a one-character run gives itself. Measured on CrowdFlower
    (benchmarks/RESULTS.md): +0.007 full-catalog NDCG@10 over five fold seeds, every
    seed up.
    """
    padded = f" {text} "
    grams = {padded[start : start + 3] for start in range(len(padded) - 2)}
    runs = _CJK_RUN.findall(text)
    if runs:
        grams = {gram for gram in grams if not _CJK_RUN.search(gram)}
        for run in runs:
            grams.update(run[start : start + 2] for start in range(max(1, len(run) - 1)))
    return frozenset(grams)


def char_share(grams: frozenset[str], title_text: str) -> float:
    """Share of a query's `char_grams` found in a `normalise_text` title (0 without grams).

    A gram is looked up as a substring of the title with a space either side, which
    for trigrams is the same as comparing the two texts' trigram sets (and a lone
    Chinese character is found inside a longer run), without building the title's set:
    ~0.2 ms for 100 candidates, nothing cached.
    """
    if not grams:
        return 0.0
    padded = f" {title_text} "
    return sum(gram in padded for gram in grams) / len(grams)


def _key(value: str | None) -> str | None:
    """The affinity key of a category or brand: NFKC, lower case, trimmed; None if empty."""
    if value is None:
        return None
    key = unicodedata.normalize("NFKC", value).strip().lower()
    return key or None


def _names(value: str | None) -> tuple[frozenset[str], ...]:
    """The token sets of each alternative name of a category or brand."""
    if not value:
        return ()
    parts = (frozenset(tokenize(part)) for part in _NAME_SEPARATORS.split(value))
    return tuple(part for part in parts if part)


@dataclass(frozen=True)
class SearchItemTable:
    """Per-item data the search features read (index = item_index).

    Attributes:
        title_tokens: `tokenize(title)` of each item, () without a title.
        title_text: `normalise_text(title)` of each item.
        title_units: `numeric_units(title)` of each item (numbers with units).
        category_names, brand_names: token sets of each alternative name.
        category_keys, brand_keys: normalised category / brand (None unknown), the keys
            of `UserAffinity`.
        log_popularity: log1p(popularity count), NaN when unknown.
        log_price: log1p(price), NaN when unknown.
    """

    title_tokens: tuple[tuple[str, ...], ...]
    title_text: tuple[str, ...]
    title_units: tuple[frozenset[str], ...]
    category_names: tuple[tuple[frozenset[str], ...], ...]
    brand_names: tuple[tuple[frozenset[str], ...], ...]
    category_keys: tuple[str | None, ...]
    brand_keys: tuple[str | None, ...]
    log_popularity: FloatArray
    log_price: FloatArray

    @property
    def n_items(self) -> int:
        """Size of the item space."""
        return len(self.title_tokens)

    @classmethod
    def from_frame(
        cls,
        items: pl.DataFrame,
        popularity: ArrayLike | None = None,
        *,
        title_column: str = TITLE,
        category_column: str = CATEGORY,
        brand_column: str = BRAND,
        price_column: str = PRICE,
    ) -> SearchItemTable:
        """Tokenize a catalog in item_index order (e.g. `features/items.parquet`).

        Args:
            items: one row per item, in item_index order; the text and price columns
                are optional (missing = unknown for every item).
            popularity: (n_items,) non-negative counts per item (events or distinct
                users, e.g. from `item_popularity`); None = unknown.
            title_column, category_column, brand_column, price_column: column names.

        Raises:
            DataError: `popularity` has the wrong length or negative counts.
        """
        n_items = items.height
        if ITEM_INDEX in items.columns and not items[ITEM_INDEX].equals(
            pl.Series(ITEM_INDEX, range(n_items), dtype=items[ITEM_INDEX].dtype)
        ):
            raise DataError("search features: items must be sorted by item_index 0..n-1")

        def texts(column: str) -> list[str | None]:
            if column not in items.columns:
                return [None] * n_items
            return items[column].cast(pl.String).to_list()

        titles = texts(title_column)
        categories = texts(category_column)
        brands = texts(brand_column)
        if popularity is None:
            log_popularity = np.full(n_items, np.nan, dtype=np.float32)
        else:
            counts = np.asarray(popularity, dtype=np.float64).reshape(-1)
            if counts.shape != (n_items,) or bool((counts < 0).any()):
                raise DataError(
                    f"search features: popularity needs {n_items} counts >= 0 (one per "
                    f"item), got shape {counts.shape}"
                )
            log_popularity = np.log1p(counts).astype(np.float32)
        if price_column in items.columns:
            price = items[price_column].cast(pl.Float64).fill_null(np.nan).to_numpy()
            with np.errstate(invalid="ignore"):
                log_price = np.where(price >= 0, np.log1p(np.abs(price)), np.nan)
        else:
            log_price = np.full(n_items, np.nan)
        return cls(
            title_tokens=tuple(tuple(tokenize(title)) if title else () for title in titles),
            title_text=tuple(normalise_text(title) for title in titles),
            title_units=tuple(
                frozenset(numeric_units(title)) if title else _NONE for title in titles
            ),
            category_names=tuple(_names(value) for value in categories),
            brand_names=tuple(_names(value) for value in brands),
            category_keys=tuple(_key(value) for value in categories),
            brand_keys=tuple(_key(value) for value in brands),
            log_popularity=log_popularity,
            log_price=np.asarray(log_price, dtype=np.float32),
        )


@dataclass(frozen=True)
class UserAffinity:
    """A user's normalised distribution over categories and brands (keys: `_key` form).

    Each mapping sums to 1 over the history items whose category (brand) is known, or
    is empty.
    """

    category: Mapping[str, float] = field(default_factory=dict)
    brand: Mapping[str, float] = field(default_factory=dict)


def user_affinity(
    table: SearchItemTable,
    history: ArrayLike,
    weights: ArrayLike | None = None,
) -> UserAffinity:
    """The category and brand shares of a user's history.

    Args:
        table: the item table.
        history: item indices the user interacted with (repeats count again).
        weights: a weight per history entry (e.g. event weights); None = 1 each.

    Raises:
        DataError: an item outside the table, or weights of another length / negative.
    """
    items = np.asarray(history, dtype=np.int64).reshape(-1)
    values = (
        np.ones(items.size, dtype=np.float64)
        if weights is None
        else np.asarray(weights, dtype=np.float64).reshape(-1)
    )
    if values.shape != items.shape or bool((values < 0).any()):
        raise DataError(
            f"user affinity: need one weight >= 0 per history item ({items.size}), "
            f"got shape {values.shape}"
        )
    if items.size and (int(items.min()) < 0 or int(items.max()) >= table.n_items):
        raise DataError(
            f"user affinity: history item indices must be in 0..{table.n_items - 1}, got "
            f"{int(items.min())}..{int(items.max())}"
        )

    def shares(keys: tuple[str | None, ...]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item, weight in zip(items.tolist(), values.tolist(), strict=True):
            key = keys[item]
            if key is not None and weight > 0:
                totals[key] = totals.get(key, 0.0) + weight
        total = sum(totals.values())
        return {key: value / total for key, value in sorted(totals.items())} if total else {}

    return UserAffinity(category=shares(table.category_keys), brand=shares(table.brand_keys))


def item_popularity(
    interactions: pl.DataFrame,
    n_items: int,
    *,
    item_column: str = ITEM_INDEX,
    user_column: str = USER_INDEX,
    weight_column: str = WEIGHT,
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Distinct users per item among events of positive weight (the popularity counts).

    Args:
        interactions: `features/interactions.parquet` rows (filter to the training
            period first when building training features).
        n_items: size of the item space.
        item_column, user_column, weight_column: column names (no weight column: every
            event counts).
    """
    events = interactions
    if weight_column in events.columns:
        events = events.filter(pl.col(weight_column) > 0)
    per_item = events.group_by(item_column).agg(pl.col(user_column).n_unique().alias("users"))
    counts = np.zeros(n_items, dtype=np.int64)
    index = per_item[item_column].to_numpy().astype(np.int64)
    inside = (index >= 0) & (index < n_items)
    counts[index[inside]] = per_item["users"].to_numpy()[inside]
    return counts


def rank_signal(ranked_items: ArrayLike, item_indices: ArrayLike) -> FloatArray:
    """1-based rank of each candidate in a ranked list (best first); NaN when absent.

    Negative entries (padding) take no rank; an item listed twice keeps its first rank.
    """
    ranked = np.asarray(ranked_items, dtype=np.int64).reshape(-1)
    candidates = np.asarray(item_indices, dtype=np.int64).reshape(-1)
    positions = np.arange(1, ranked.size + 1, dtype=np.float64)
    keep = ranked >= 0
    distinct, first = np.unique(ranked[keep], return_index=True)
    ranks = np.full(candidates.size, np.nan, dtype=np.float32)
    if distinct.size == 0:
        return ranks
    where = np.minimum(np.searchsorted(distinct, candidates), distinct.size - 1)
    found = distinct[where] == candidates
    ranks[found] = positions[keep][first[where[found]]]
    return ranks


def bm25_signals(
    field_scores: Mapping[str, ArrayLike], item_indices: ArrayLike
) -> dict[str, FloatArray]:
    """`bm25_<field>` signals of the candidates from `BM25Search.field_scores`.

    Fields without a feature column (anything but `BM25_FIELDS`) are left out.
    """
    candidates = np.asarray(item_indices, dtype=np.int64)
    return {
        f"bm25_{name}": np.asarray(scores, dtype=np.float32)[candidates]
        for name, scores in field_scores.items()
        if name in BM25_FIELDS
    }


def _signal_columns(
    signals: Mapping[str, ArrayLike], n_candidates: int, names: Sequence[str]
) -> list[FloatArray]:
    """The `names` columns from `signals` (NaN where a name is not given)."""
    columns: list[FloatArray] = []
    for name in names:
        if name not in signals:
            columns.append(np.full(n_candidates, np.nan, dtype=np.float32))
            continue
        values = np.asarray(signals[name], dtype=np.float32).reshape(-1)
        if values.shape != (n_candidates,):
            raise DataError(
                f"search features: signal {name!r} has {values.size} values for "
                f"{n_candidates} candidates; pass the scores of the candidates only"
            )
        columns.append(values)
    return columns


def _text_columns(
    query: str,
    corrections: Mapping[str, str],
    items: list[int],
    table: SearchItemTable,
) -> list[FloatArray]:
    # the part of the query search reads, as `HybridSearch.view` passes it: bounded work
    query = bound_query(query)
    tokens = tuple(
        corrections.get(token, token) for token in tokenize(query, max_tokens=MAX_QUERY_TOKENS)
    )
    distinct = frozenset(tokens)
    pairs = frozenset(zip(tokens, tokens[1:], strict=False))
    units = frozenset(numeric_units(query))
    query_text = normalise_text(query)
    n_candidates = len(items)
    exact = np.zeros(n_candidates, dtype=np.float32)
    contains = np.zeros(n_candidates, dtype=np.float32)
    share = np.zeros(n_candidates, dtype=np.float32)
    bigrams = np.zeros(n_candidates, dtype=np.float32)
    query_grams = char_grams(query_text)
    char_matches = np.zeros(n_candidates, dtype=np.float32)
    unit_share = np.full(n_candidates, np.nan if not units else 0.0, dtype=np.float32)
    conflict = np.zeros(n_candidates, dtype=np.float32)
    category = np.zeros(n_candidates, dtype=np.float32)
    brand = np.zeros(n_candidates, dtype=np.float32)
    for row, item in enumerate(items):
        title = table.title_tokens[item]
        if tokens:
            exact[row] = float(title == tokens)
            share[row] = len(distinct.intersection(title)) / len(distinct)
            category[row] = float(any(name <= distinct for name in table.category_names[item]))
            brand[row] = float(any(name <= distinct for name in table.brand_names[item]))
        if pairs:
            bigrams[row] = len(pairs.intersection(zip(title, title[1:], strict=False))) / len(pairs)
        if units:
            found = units & table.title_units[item]
            unit_share[row] = len(found) / len(units)
            conflict[row] = float(bool(table.title_units[item]) and not found)
        if query_text:
            contains[row] = float(query_text in table.title_text[item])
            char_matches[row] = char_share(query_grams, table.title_text[item])
    count = np.full(n_candidates, float(len(tokens)), dtype=np.float32)
    return [
        count,
        exact,
        contains,
        share,
        bigrams,
        char_matches,
        unit_share,
        conflict,
        category,
        brand,
    ]


def search_features(
    query: str,
    item_indices: ArrayLike,
    signals: Mapping[str, ArrayLike],
    table: SearchItemTable,
    *,
    corrections: Mapping[str, str] | None = None,
    affinity: UserAffinity | None = None,
    extra_encoders: int = 0,
) -> FloatArray:
    """The (n_cand, len(search_feature_names(extra_encoders))) float32 feature matrix.

    Args:
        query: the query text.
        item_indices: int (n_cand,) candidate items.
        signals: name (from `SIGNAL_NAMES`, or `extra_signal_names(extra_encoders)`)
            -> (n_cand,) values; missing names are NaN.
        table: the item table.
        corrections: misspelled query token -> catalog token (`BM25Search.corrections`).
        affinity: the user's category / brand shares; None = no user (0).
        extra_encoders: feature encoders whose signals end the row (see the module doc).

    Raises:
        DataError: an unknown signal name, a signal of the wrong length, or an item
            index outside the table.

    Example:
        >>> items = pl.DataFrame({"title": ["Red Dress", "Blue Jeans"], "price": [30.0, None]})
        >>> table = SearchItemTable.from_frame(items, popularity=[9, 0])
        >>> matrix = search_features("red dresss", [0, 1], {"rrf_score": [0.03, 0.01]},
        ...                          table, corrections={"dresss": "dress"})
        >>> column = SEARCH_FEATURE_NAMES.index("title_exact_match")
        >>> matrix[:, column].tolist()
        [1.0, 0.0]
    """
    candidates = np.asarray(item_indices, dtype=np.int64).reshape(-1)
    if candidates.size and (int(candidates.min()) < 0 or int(candidates.max()) >= table.n_items):
        raise DataError(
            f"search features: candidate item indices must be in 0..{table.n_items - 1}, "
            f"got {int(candidates.min())}..{int(candidates.max())}"
        )
    extra_names = extra_signal_names(extra_encoders)
    unknown = sorted(set(signals) - set(SIGNAL_NAMES) - set(extra_names))
    if unknown:
        raise DataError(
            f"search features: unknown signals {unknown}; known: "
            f"{', '.join((*SIGNAL_NAMES, *extra_names))}"
        )
    items = candidates.tolist()
    n_candidates = len(items)
    columns = _signal_columns(signals, n_candidates, SIGNAL_NAMES)
    columns += _text_columns(query, corrections or {}, items, table)
    log_price = table.log_price[candidates]
    columns += [
        table.log_popularity[candidates],
        log_price,
        np.isnan(log_price).astype(np.float32),
    ]
    chosen = affinity or UserAffinity()
    for keys, shares in (
        (table.category_keys, chosen.category),
        (table.brand_keys, chosen.brand),
    ):
        columns.append(
            np.array(
                [
                    shares.get(key, 0.0) if (key := keys[item]) is not None else 0.0
                    for item in items
                ],
                dtype=np.float32,
            )
        )
    columns += _signal_columns(signals, n_candidates, extra_names)
    return np.column_stack([np.asarray(c, dtype=np.float32) for c in columns]).reshape(
        n_candidates, len(SEARCH_FEATURE_NAMES) + len(extra_names)
    )


def query_features(
    queries: Sequence[str],
    candidates: Sequence[ArrayLike],
    signals: Sequence[Mapping[str, ArrayLike]],
    table: SearchItemTable,
    *,
    corrections: Sequence[Mapping[str, str]] | None = None,
    affinities: Sequence[UserAffinity | None] | None = None,
    extra_encoders: int = 0,
) -> tuple[FloatArray, IntArray]:
    """`search_features` of many queries stacked, with the query number of each row.

    `extra_encoders` is passed on to `search_features`.

    Returns:
        (features, groups): (total candidates, n_features) float32 and int64 (rows,)
        the position of each row's query in `queries`, as `SearchReranker.fit` takes.

    Raises:
        DataError: the sequences differ in length.
    """
    n_queries = len(queries)
    lengths = {len(candidates), len(signals)}
    if corrections is not None:
        lengths.add(len(corrections))
    if affinities is not None:
        lengths.add(len(affinities))
    if lengths != {n_queries}:
        raise DataError(
            f"search features: queries, candidates, signals (and corrections, affinities) "
            f"need one entry per query ({n_queries}); got lengths {sorted(lengths)}"
        )
    blocks: list[FloatArray] = []
    groups: list[IntArray] = []
    for number, query in enumerate(queries):
        block = search_features(
            query,
            candidates[number],
            signals[number],
            table,
            corrections=None if corrections is None else corrections[number],
            affinity=None if affinities is None else affinities[number],
            extra_encoders=extra_encoders,
        )
        blocks.append(block)
        groups.append(np.full(block.shape[0], number, dtype=np.int64))
    if not blocks:
        width = len(search_feature_names(extra_encoders))
        return np.empty((0, width), dtype=np.float32), np.empty(0, np.int64)
    return np.vstack(blocks), np.concatenate(groups)


__all__ = [
    "BM25_FIELDS",
    "EXTRA_ENCODER_SIGNALS",
    "ITEM_FEATURE_NAMES",
    "SEARCH_FEATURE_NAMES",
    "SIGNAL_NAMES",
    "TEXT_FEATURE_NAMES",
    "USER_FEATURE_NAMES",
    "SearchItemTable",
    "UserAffinity",
    "bm25_signals",
    "extra_signal_names",
    "item_popularity",
    "normalise_text",
    "query_features",
    "rank_signal",
    "search_feature_names",
    "search_features",
    "user_affinity",
]
