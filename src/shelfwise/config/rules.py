"""Merchandising rules: the file `serve.rules_file` names, and what `PUT /v1/admin/rules` takes.

Rules are data, not code (issue 17). A rules file is YAML (or JSON, which YAML reads)::

    rules:
      - id: pin-thinkpad            # stable id: responses list it in `applied_rules`
        action: pin                 # pin | boost | bury | hide
        queries: ["laptop", "笔记本电脑"]   # search queries it applies to (normalised)
        items: ["sku-laptop"]       # pin: these items, in this order, from `position`
      - id: bury-out-of-season
        action: bury
        category: ["grocery"]       # target: brand, category, price band, attributes
        weight: 0.5                 # share of the list the items move down
        start: 2026-12-01T00:00:00Z
        end: 2027-01-01T00:00:00Z

A rule has *conditions* (where it applies: `endpoints`, `queries`, `category_page`,
`segments`, `start`/`end`; an empty condition holds everywhere) and *targets* (which
items it acts on: `items`, `brand`, `category`, `price_min`/`price_max`,
`attributes`; a target given must hold, all given targets together). Unknown keys are
errors, as in every config section; `shelfwise.runtime.rules` applies them.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any, Final, Literal, Self

from pydantic import AwareDatetime, ConfigDict, Field, field_validator, model_validator

from shelfwise.config._base import Section

MAX_RULES: Final = 1000  # bound on the rule label's cardinality in /metrics, too
MAX_RULE_VALUES: Final = 100
RULE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

RuleAction = Literal["pin", "boost", "bury", "hide"]
Endpoint = Literal["search", "recommend"]


def normalise_query(text: str) -> str:
    """The form queries are compared in: NFKC, case-folded, whitespace collapsed.

    Example:
        >>> normalise_query("  Laptop   ＰＲＯ ")
        'laptop pro'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# The action/target rule of `Rule._consistent`, in the schema (JSON Schema if/then/else),
# so clients and schemathesis see it: a pin names items only; other actions need a target.
_TARGET_SCHEMA: Final[dict[str, Any]] = {
    "if": {"properties": {"action": {"const": "pin"}}, "required": ["action"]},
    "then": {
        "required": ["items"],
        "properties": {
            "items": {"minItems": 1},
            "brand": {"maxItems": 0},
            "category": {"maxItems": 0},
            "attributes": {"maxProperties": 0},
            "price_min": {"type": "null"},
            "price_max": {"type": "null"},
        },
    },
    "else": {
        "anyOf": [
            {"required": [name], "properties": {name: {"minItems": 1}}}
            for name in ("items", "brand", "category")
        ]
        + [{"required": ["attributes"], "properties": {"attributes": {"minProperties": 1}}}]
        + [
            {"required": [name], "properties": {name: {"type": "number"}}}
            for name in ("price_min", "price_max")
        ]
    },
}


class Rule(Section):
    """One merchandising rule: where it applies (conditions) and what it does (targets).

    Refused (422 from the API, a config error from the file): unknown keys, a pin rule
    without `items` or with other targets, another action without a target. Accepted
    with a warning (`RulesConfig.warnings`), as the schema cannot state them: a window
    whose start is not before its end and a price band whose bounds are reversed (the
    rule then never applies), and ids used twice.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_TARGET_SCHEMA)

    id: str = Field(
        pattern=RULE_ID_PATTERN,
        description="Stable id (letters, digits, . _ -; at most 64): listed in responses' "
        "`applied_rules` and in /metrics.",
    )
    action: RuleAction = Field(
        description="pin: put `items` at `position` (inserted even when the model did not "
        "rank them); boost / bury: move the target items up / down by `weight`; hide: "
        "leave the target items out."
    )
    description: str = Field(default="", max_length=500, description="What the rule is for.")
    endpoints: list[Endpoint] = Field(
        default=["search", "recommend"],
        min_length=1,
        description="Where the rule applies: search, recommend or both.",
    )
    queries: list[str] = Field(
        default=[],
        max_length=MAX_RULE_VALUES,
        description="Search queries it applies to, compared normalised (case, width and "
        "spacing ignored); empty: every query (and recommendations).",
    )
    category_page: str | None = Field(
        default=None,
        description="Applies only when the request filters on exactly this category (the "
        "category page); case-insensitive.",
    )
    segments: list[str] = Field(
        default=[],
        max_length=MAX_RULE_VALUES,
        description="User segments it applies to (the request's `segment`); empty: everyone.",
    )
    start: AwareDatetime | None = Field(
        default=None, description="First moment it applies (ISO 8601 with a time zone)."
    )
    end: AwareDatetime | None = Field(
        default=None, description="Moment it stops applying (exclusive, ISO 8601 with a zone)."
    )
    items: list[str] = Field(
        default=[],
        max_length=MAX_RULE_VALUES,
        description="Item ids: the pinned items, in order (pin), or target items (others).",
    )
    brand: list[str] = Field(
        default=[], max_length=MAX_RULE_VALUES, description="Target brands (case-insensitive)."
    )
    category: list[str] = Field(
        default=[], max_length=MAX_RULE_VALUES, description="Target categories (case-insensitive)."
    )
    price_min: float | None = Field(default=None, ge=0, description="Target price band, lowest.")
    price_max: float | None = Field(default=None, ge=0, description="Target price band, highest.")
    attributes: dict[str, str] = Field(
        default={},
        max_length=20,
        description='Target attributes (the catalog\'s `attributes` JSON), e.g. {"color": '
        '"red"}; the key "tag" matches an item whose `tags` list holds the value.',
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="boost / bury: how far the items move, as a share of the list (1.0: "
        "above / below every other item; 0.2: a fifth of the list).",
    )
    position: int = Field(
        default=1, ge=1, le=1000, description="pin: 1-based position of the first pinned item."
    )

    @field_validator("queries")
    @classmethod
    def _normalised(cls, queries: list[str]) -> list[str]:
        return [normalise_query(query) for query in queries]

    @field_validator("start", "end")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        """The moment in UTC (how the audit trail shows it); one that UTC cannot hold
        (year 1 east of Greenwich, year 9999 west of it) becomes the first or last one."""
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            edge = datetime.min if moment.year < 5000 else datetime.max
            return edge.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        has_price = self.price_min is not None or self.price_max is not None
        if self.action == "pin":
            if not self.items:
                raise ValueError(f"rule {self.id!r}: a pin rule needs `items` (the ids to pin)")
            if self.brand or self.category or self.attributes or has_price:
                raise ValueError(
                    f"rule {self.id!r}: a pin rule pins `items` only; use boost for brands, "
                    "categories, prices or attributes"
                )
        elif not (self.items or self.brand or self.category or self.attributes or has_price):
            raise ValueError(
                f"rule {self.id!r}: a {self.action} rule needs a target: items, brand, "
                "category, price_min / price_max or attributes"
            )
        return self

    def warnings(self) -> list[str]:
        """What makes the rule never apply, though valid (see the class doc)."""
        found = []
        if self.start is not None and self.end is not None and self.start >= self.end:
            found.append(
                f"rule {self.id!r} never applies: start {self.start.isoformat()} is not before "
                f"end {self.end.isoformat()}"
            )
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            found.append(
                f"rule {self.id!r} matches no item: price_min {self.price_min} is above "
                f"price_max {self.price_max}"
            )
        return found

    def active_at(self, moment: datetime) -> bool:
        """True when `moment` (aware) is inside the rule's time window."""
        if self.start is not None and moment < self.start:
            return False
        return self.end is None or moment < self.end


class RulesConfig(Section):
    """A whole rules file: the rules, applied in file order."""

    rules: list[Rule] = Field(
        default=[],
        max_length=MAX_RULES,
        description=f"The merchandising rules, at most {MAX_RULES}.",
    )

    def warnings(self) -> list[str]:
        """Rules that never apply, and ids used more than once (each one line)."""
        found = [warning for rule in self.rules for warning in rule.warnings()]
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                found.append(f"rule id {rule.id!r} is used twice; /metrics counts them together")
            seen.add(rule.id)
        return found


def utc_now() -> datetime:
    """The current moment, time-zone aware (what rule windows compare with)."""
    return datetime.now(tz=UTC)
