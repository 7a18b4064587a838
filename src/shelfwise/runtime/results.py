"""What the engine answers: one frozen record per job, and the request checks they share.

Each record carries the items (`ScoredItem`, best first) and, where the job can fall
back, which fallback produced them (`fallback`) and why (`fallback_reason`; the table
is in `shelfwise.runtime.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from shelfwise.errors import RequestError, UnknownItemError
from shelfwise.runtime.catalog import ScoredItem

Fallback = Literal["popular"]
POPULAR: Final = "popular"
HINT_QUERY_CHARS: Final = 64  # the most characters of a request's text an answer repeats


@dataclass(frozen=True)
class RecommendResult:
    """Items for a user, best first, and whether a fallback produced them."""

    items: list[ScoredItem]
    fallback: Fallback | None = None
    fallback_reason: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """Items matching a query, best first; `hint` explains an empty list."""

    items: list[ScoredItem]
    hint: str | None = None


@dataclass(frozen=True)
class SimilarResult:
    """Items similar to an item, best first, and whether a fallback produced them."""

    items: list[ScoredItem]
    fallback: Fallback | None = None
    fallback_reason: str | None = None


@dataclass(frozen=True)
class PredictResult:
    """Click probabilities of the asked items, in request order."""

    predictions: list[tuple[str, float]]
    fallback_reason: str | None = None


def check_k(k: int) -> None:
    """Refuse a list length below 1.

    Raises:
        RequestError: `k` < 1.
    """
    if k < 1:
        raise RequestError(f"k must be at least 1, got {k}")


def unknown_item(raw_item_id: str, version: str) -> UnknownItemError:
    """The error for an item id the bundle's catalog does not hold (id cut to 64 chars)."""
    return UnknownItemError(
        f"item {raw_item_id[:HINT_QUERY_CHARS]!r} is not in the catalog of model version {version}"
    )
