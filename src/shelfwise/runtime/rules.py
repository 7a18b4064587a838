"""Merchandising rules at serving time: which rules a request meets, and their targets.

A `RuleSet` is one version of the rules (`shelfwise.config.rules.RulesConfig`, from the
rules file or `PUT /v1/admin/rules`), read-only once built, so requests share it and a
new version swaps in with one reference change. `RuleSet.matching` picks the rules
whose conditions a request meets (endpoint, query, category page, segment, time
window); `targets` says which candidates a rule acts on. `shelfwise.runtime.steering`
applies them: hide, then boost / bury, then the diversity constraints, then pins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from shelfwise.config.rules import Endpoint, Rule, RulesConfig, normalise_query
from shelfwise.contracts import BoolArray
from shelfwise.runtime.catalog import Catalog, ScoredItem
from shelfwise.runtime.diversity import facts_of

TAG_KEY = "tag"  # `attributes: {tag: x}` matches items whose `tags` list holds x
TAGS_ATTRIBUTE = "tags"


@dataclass(frozen=True)
class RuleContext:
    """What a request says about where it is: the rules' conditions read it.

    Attributes:
        endpoint: "search" or "recommend".
        query: the search text (None for recommendations).
        category_page: the category the request filters on, when it names exactly one.
        segment: the user segment the request names, if any.
        moment: now, time-zone aware.
    """

    endpoint: Endpoint
    query: str | None
    category_page: str | None
    segment: str | None
    moment: datetime


@dataclass(frozen=True)
class RuleSet:
    """One version of the rules, in file order.

    Attributes:
        version: the rules version (0: no rules were ever set).
        config: the validated rules.
    """

    version: int = 0
    config: RulesConfig = field(default_factory=RulesConfig)

    def matching(self, context: RuleContext) -> list[Rule]:
        """The rules whose conditions hold for `context`, in file order."""
        if not self.config.rules:
            return []
        query = normalise_query(context.query) if context.query is not None else None
        page = context.category_page.casefold() if context.category_page is not None else None
        found = []
        for rule in self.config.rules:
            if context.endpoint not in rule.endpoints or not rule.active_at(context.moment):
                continue
            if rule.queries and (query is None or query not in rule.queries):
                continue
            if rule.category_page is not None and rule.category_page.casefold() != page:
                continue
            if rule.segments and context.segment not in rule.segments:
                continue
            found.append(rule)
        return found


def category_page(category: str | Sequence[str] | None) -> str | None:
    """The category page of a request's category filter: one category, else None."""
    if isinstance(category, str):
        return category
    if category is not None and len(category) == 1:
        return category[0]
    return None


def targets(
    rule: Rule, catalog: Catalog, items: Sequence[ScoredItem], indices: Sequence[int]
) -> BoolArray:
    """True for each of `items` the rule acts on (all its targets hold).

    Brand, category and price are read from the listed items themselves, so they are
    the fields the answer shows (online updates included); attributes from the catalog
    (`indices`: -1 for an item the bundle does not hold, which has none).
    """
    n = len(items)
    hit = np.ones(n, dtype=np.bool_)
    if rule.items:
        wanted = set(rule.items)
        hit &= np.fromiter((item.raw_item_id in wanted for item in items), np.bool_, n)
    if rule.brand:
        hit &= _named([item.brand for item in items], rule.brand)
    if rule.category:
        hit &= _named([item.category for item in items], rule.category)
    if rule.price_min is not None or rule.price_max is not None:
        low = rule.price_min if rule.price_min is not None else -np.inf
        high = rule.price_max if rule.price_max is not None else np.inf
        hit &= np.fromiter(
            (item.price is not None and low <= item.price <= high for item in items), np.bool_, n
        )
    if rule.attributes:
        attributes = facts_of(catalog).attributes
        hit &= np.fromiter(
            (i >= 0 and _has_attributes(attributes[int(i)], rule.attributes) for i in indices),
            np.bool_,
            n,
        )
    return hit


def _named(values: list[str | None], names: list[str]) -> BoolArray:
    folded = {name.casefold() for name in names}
    return np.fromiter(
        (v is not None and v.casefold() in folded for v in values), np.bool_, len(values)
    )


def _has_attributes(attributes: dict[str, object], wanted: dict[str, str]) -> bool:
    for key, value in wanted.items():
        if key == TAG_KEY:
            tags = attributes.get(TAGS_ATTRIBUTE)
            if not isinstance(tags, list) or not any(
                str(tag).casefold() == value.casefold() for tag in tags
            ):
                return False
        else:
            found = attributes.get(key)
            if found is None or str(found).casefold() != value.casefold():
                return False
    return True
