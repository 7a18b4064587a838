"""Labelled queries: graded relevance judgements drawn from the generator's ground truth.

Queries are drawn the way shoppers form them (a popular item in mind, a category term,
sometimes a color, brand or device, rarely a typo). Each distinct query gets 20 to 40
judged items, pooled like a human assessment would be: the matching items first
(grade 3), other items of the category (2), of the department (1), and a few unrelated
ones (0). Within a grade, popular items are more likely to be judged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from shelfwise.contracts import QUERY, RAW_ITEM_ID, RELEVANCE
from shelfwise.sample._catalog import CatalogModel
from shelfwise.sample._queries import CHINESE, ENGLISH, QuerySpec, draw_specs, grades, render_query

_MIN_JUDGED, _MAX_JUDGED = 20, 40
# Target share of each grade (3, 2, 1) among a query's judged items; the rest is 0.
_GRADE_SHARES = {3: 0.35, 2: 0.3, 1: 0.2}


@dataclass(frozen=True)
class Labels:
    """The labelled queries and two good demo queries.

    Attributes:
        frame: Rows of (query, raw_item_id, relevance).
        n_queries: Number of distinct queries.
        example_en: An English query with several exact matches, e.g. "red dress".
        example_zh: A Chinese query with several exact matches, e.g. "联想 笔记本电脑".
    """

    frame: pl.DataFrame
    n_queries: int
    example_en: str
    example_zh: str


def label_count(n_items: int) -> int:
    """Number of distinct labelled queries for a catalog size (100 to 300)."""
    return int(np.clip(n_items // 5, 100, 300))


def _judge(
    grade: NDArray[np.int64], popularity: NDArray[np.float64], rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Items judged for one query and their grades."""
    n_judged = int(rng.integers(_MIN_JUDGED, _MAX_JUDGED + 1))
    chosen: list[NDArray[np.int64]] = []
    chosen_grades: list[int] = []
    remaining = n_judged
    for level in (3, 2, 1, 0):
        pool = np.flatnonzero(grade == level)
        wanted = remaining if level == 0 else round(_GRADE_SHARES[level] * n_judged)
        take = min(len(pool), wanted, remaining)
        if take <= 0:
            continue
        weights = np.ones(len(pool)) if level == 0 else popularity[pool]
        picked = rng.choice(pool, size=take, replace=False, p=weights / weights.sum())
        chosen.append(np.sort(picked))
        chosen_grades += [level] * take
        remaining -= take
    return np.concatenate(chosen), np.array(chosen_grades, dtype=np.int64)


def _pick_example(
    texts: list[str], spec: QuerySpec, n_exact: NDArray[np.int64], language: int, prefer: str
) -> str | None:
    """The query with the most exact matches among clean queries in `language`."""
    clean = (spec.language == language) & (spec.typo == 0)
    clean &= np.array(["'" not in t and '"' not in t for t in texts], dtype=bool)
    only_color = (spec.color >= 0) & (spec.brand < 0) & (spec.fits < 0)
    only_brand = (spec.brand >= 0) & (spec.color < 0) & (spec.fits < 0)
    preferred = clean & (only_color if prefer == "color" else only_brand) & (n_exact >= 3)
    for candidates in (preferred, clean & (n_exact >= 1)):
        if candidates.any():
            best = np.flatnonzero(candidates)[np.argmax(n_exact[candidates])]
            return texts[int(best)]
    return None


def build_labels(catalog: CatalogModel, n_queries: int, rng: np.random.Generator) -> Labels:
    """Draw `n_queries` distinct labelled queries (fewer if the catalog is tiny).

    Args:
        catalog: The catalog model.
        n_queries: Number of distinct queries wanted.
        rng: Random generator.

    Returns:
        The labels and the demo queries.
    """
    n_draws = 6 * n_queries
    target = np.searchsorted(catalog.global_keys, rng.random(n_draws), side="right")
    target = np.minimum(target, catalog.n_items - 1).astype(np.int64)
    spec = draw_specs(
        catalog,
        target,
        np.full(n_draws, 0.5),
        rng,
        color_share=0.35,
        brand_share=0.25,
        typo_share=0.03,
    )
    codes = spec.encode()
    texts: list[str] = []
    kept: list[int] = []
    seen: set[str] = set()
    for position, code in enumerate(codes.tolist()):
        text = render_query(code)
        if text not in seen:
            seen.add(text)
            texts.append(text)
            kept.append(position)
        if len(kept) == n_queries:
            break
    spec = QuerySpec.decode(codes[kept])
    popularity = np.exp(catalog.log_popularity)
    all_items = np.arange(catalog.n_items)
    query_column: list[str] = []
    item_column: list[NDArray[np.int64]] = []
    grade_column: list[NDArray[np.int64]] = []
    n_exact = np.zeros(len(kept), dtype=np.int64)
    for q, text in enumerate(texts):
        grade = grades(
            catalog, spec.category[q], spec.color[q], spec.brand[q], spec.fits[q], all_items
        )
        n_exact[q] = int((grade == 3).sum())
        items, item_grades = _judge(grade, popularity, rng)
        order = np.lexsort((items, -item_grades))
        query_column += [text] * len(items)
        item_column.append(items[order])
        grade_column.append(item_grades[order])
    raw_ids = np.array(catalog.raw_item_ids, dtype=object)
    frame = pl.DataFrame(
        {
            QUERY: query_column,
            RAW_ITEM_ID: raw_ids[np.concatenate(item_column)].tolist(),
            RELEVANCE: np.concatenate(grade_column).astype(np.float64),
        },
        schema={QUERY: pl.String, RAW_ITEM_ID: pl.String, RELEVANCE: pl.Float64},
    )
    return Labels(
        frame=frame,
        n_queries=len(texts),
        example_en=_pick_example(texts, spec, n_exact, ENGLISH, "color") or texts[0],
        example_zh=_pick_example(texts, spec, n_exact, CHINESE, "brand") or texts[0],
    )
