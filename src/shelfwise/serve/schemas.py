"""Request and response bodies of the HTTP API (the OpenAPI schema comes from here).

Requests forbid unknown fields, take text as sent (no stripping), and booleans,
integers and numbers are strict: `0` is not `false` and `"5"` is not `5`, as the
schema says (issue 14: schemathesis found the lax ones accepted). `k` has a static
lower bound here; its upper bound is `max_k` from the settings, checked in the routes
and written into the served schema (`serve/openapi.py`). Text has documented length
limits: a query at most `MAX_QUERY_CHARS` characters (422 above; a 512-character query
cost 330-690 ms).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shelfwise.contracts import EventType
from shelfwise.runtime.catalog import Filters, ScoredItem
from shelfwise.serve.explanations import ExplanationOut

MAX_QUERY_CHARS = 256  # Amazon's and Google's boxes take less; ~40 words of any script
MAX_ID_CHARS = 256
MAX_EXCLUDE = 1000
MAX_FILTER_VALUES = 100
MAX_PREDICT_ITEMS = 1000
MAX_EVENTS = 10_000  # static bound; the served limit is max_events_per_batch
MAX_REQUEST_ID_CHARS = 128


def _json_integer(value: Any) -> Any:
    """A JSON number only: pydantic's lax mode would turn "5" and true into integers,
    which the schema's `integer` does not allow; 5.0 stays valid (it is an integer to
    JSON Schema)."""
    if isinstance(value, str | bytes | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# bounds inside the type: on a `... | None` field pydantic would write them as "ge"
Count = Annotated[int, Field(ge=1), BeforeValidator(_json_integer)]
UnixSeconds = Annotated[int, Field(ge=0, le=4_102_444_800), BeforeValidator(_json_integer)]

_K_DESCRIPTION = "How many items to return (1..max_k, default default_k from the settings)."


class _Request(BaseModel):
    # Text is taken as sent: stripping it first made "\x1c" (whitespace to Python, not
    # to the schema's regex flavour) fail `minLength` after passing the schema's check.
    model_config = ConfigDict(extra="forbid")


class FiltersIn(_Request):
    """Restrictions applied before ranking; every given filter must hold.

    A `price_min` above `price_max` matches no item (an empty list), as any other pair
    of filters that no item meets: the schema cannot state an order between two fields,
    so refusing it would refuse requests the schema allows.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"category": "electronics", "price_max": 6000}]},
    )

    category: str | list[str] | None = Field(
        default=None,
        max_length=MAX_FILTER_VALUES,
        description="A category, or a list of categories (any of them); case-insensitive.",
    )
    brand: str | list[str] | None = Field(
        default=None,
        max_length=MAX_FILTER_VALUES,
        description="A brand, or a list of brands (any of them); case-insensitive.",
    )
    price_min: StrictFloat | None = Field(
        default=None, ge=0, description="Lowest price, inclusive."
    )
    price_max: StrictFloat | None = Field(
        default=None, ge=0, description="Highest price, inclusive."
    )
    in_stock: StrictBool | None = Field(
        default=None,
        description="true: in stock (or unknown stock) only; false: out of stock only (a "
        "back-office view); unset: the server's default (`serve.hide_out_of_stock`, on: "
        "sold-out items are left out).",
    )
    include_out_of_stock: StrictBool = Field(
        default=False,
        description="true: list sold-out items too, where the server hides them by default "
        "(`serve.hide_out_of_stock`); `in_stock`, when set, wins.",
    )

    def to_filters(self) -> Filters:
        """The engine's filter record."""
        return Filters(
            category=self.category,
            brand=self.brand,
            price_min=self.price_min,
            price_max=self.price_max,
            in_stock=self.in_stock,
            include_out_of_stock=self.include_out_of_stock,
        )


class DiversityIn(_Request):
    """Business constraints on the list (each unset one takes the server's default)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"max_per_brand": 2, "mmr_lambda": 0.3}]},
    )

    max_per_brand: Count | None = Field(
        default=None, description="The most items of one brand in the list (strict cap)."
    )
    max_per_category: Count | None = Field(
        default=None, description="The most items of one category in the list (strict cap)."
    )
    mmr_lambda: StrictFloat | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="MMR diversification: 0 keeps the ranking, 1 picks the item least "
        "similar to those above it.",
    )
    margin_weight: StrictFloat | None = Field(
        default=None,
        ge=0.0,
        le=10.0,
        description="Weight of the item's margin (catalog attribute `margin`, 0..1) in the "
        "order; 0 ignores it.",
    )


_EXPLAIN_DESCRIPTION = (
    "Attach to each item the reasons it was listed, read off the models that scored it "
    "(history items, matched terms, click-model features, rules) and a short sentence. "
    "Off by default; costs nothing when off."
)
_SEGMENT_DESCRIPTION = "The shopper's segment (e.g. vip): rules with `segments` apply to it."
_DIVERSITY_DESCRIPTION = "Brand / category caps, MMR diversification and margin weight."


MAX_HISTORY = 200  # events of an inline history (the runtime reads as many)


class HistoryEventIn(_Request):
    """One event of an inline session history: an item id, and what and when if known."""

    item_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The shop's item id.")
    event_type: EventType | None = Field(
        default=None, description="view, click, cart, purchase, search or rating; default view."
    )
    timestamp: UnixSeconds | None = Field(
        default=None,
        description="UTC unix seconds; when every event has one, they order the history.",
    )


HistoryEntry = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)] | HistoryEventIn


class RecommendRequest(_Request):
    """Ask for recommendations for a user (or an anonymous visitor)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "u42", "k": 5, "exclude": ["sku-123"], "filters": {"in_stock": True}}
            ]
        },
    )

    user_id: str | None = Field(
        default=None,
        max_length=MAX_ID_CHARS,
        description="The shop's user id. Unknown or missing users get popular items "
        '(the response then says `"fallback": "popular"`).',
    )
    k: Count | None = Field(default=None, description=_K_DESCRIPTION)
    exclude: list[str] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDE,
        description="Item ids never to return, e.g. what is already in the cart.",
    )
    filters: FiltersIn | None = Field(
        default=None,
        description="Restrictions applied before ranking; sold-out items are left out "
        "unless `include_out_of_stock` (server default `serve.hide_out_of_stock`).",
    )
    exclude_purchased: StrictBool = Field(
        default=True,
        description="Leave out the items the user purchased (events sent to /v1/events).",
    )
    history: list[HistoryEntry] | None = Field(
        default=None,
        max_length=MAX_HISTORY,
        description=f"The visit's events so far, oldest first (at most {MAX_HISTORY}): "
        'item ids, or objects `{"item_id", "event_type", "timestamp"}`. Recommends what '
        "follows this session (an anonymous visitor needs no user id); item ids the model "
        "does not know are ignored and counted in `unknown_history_items`.",
    )
    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="A session whose events were sent to /v1/events with this `session_id`: "
        "they form the history (before any inline `history`).",
    )
    explain: StrictBool = Field(default=False, description=_EXPLAIN_DESCRIPTION)
    segment: str | None = Field(
        default=None, min_length=1, max_length=MAX_ID_CHARS, description=_SEGMENT_DESCRIPTION
    )
    diversity: DiversityIn | None = Field(default=None, description=_DIVERSITY_DESCRIPTION)


class SearchRequest(_Request):
    """Search the catalog with free text (any language the index supports)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "laptop", "k": 10},
                {"query": "笔记本电脑", "k": 5, "filters": {"price_max": 8000}},
            ]
        },
    )

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description=f"The search text, 1 to {MAX_QUERY_CHARS} characters (longer: 422 "
        "invalid-request); of a very long query only the first words are searched.",
    )
    user_id: str | None = Field(
        default=None,
        max_length=MAX_ID_CHARS,
        description="The shop's user id; personalises the ranking for known shoppers.",
    )
    k: Count | None = Field(default=None, description=_K_DESCRIPTION)
    filters: FiltersIn | None = Field(
        default=None,
        description="Restrictions applied before ranking; sold-out items are left out "
        "unless `include_out_of_stock` (server default `serve.hide_out_of_stock`).",
    )
    explain: StrictBool = Field(default=False, description=_EXPLAIN_DESCRIPTION)
    segment: str | None = Field(
        default=None, min_length=1, max_length=MAX_ID_CHARS, description=_SEGMENT_DESCRIPTION
    )
    diversity: DiversityIn | None = Field(default=None, description=_DIVERSITY_DESCRIPTION)


class ItemOut(BaseModel):
    """One returned item with the fields a shop needs to render it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "item_id": "sku-001",
                    "score": 3.52,
                    "title": "Lenovo ThinkPad 笔记本电脑",
                    "category": "electronics",
                    "brand": "Lenovo",
                    "price": 5999.0,
                    "in_stock": True,
                }
            ]
        }
    )

    item_id: str = Field(description="The shop's item id (raw_item_id).")
    score: float = Field(
        description="Model score, higher is better; its scale depends on the model. The list "
        "order is the ranking: items filled in from popularity carry popularity scores."
    )
    title: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    in_stock: bool | None = None
    explanation: ExplanationOut | None = Field(
        default=None, description="Why it was listed; only with `explain: true`, else null."
    )

    @staticmethod
    def fields_of(item: ScoredItem) -> dict[str, Any]:
        """An engine result as this model's fields (for `model_validate` of a response).

        Responses are validated from plain dicts in one `model_validate` call, which
        pydantic-core does in Rust: ten items cost ~11 us that way, three times less
        than building `ItemOut` objects one by one (benchmarks/RESULTS.md, "Serving
        under load").
        """
        return {
            "item_id": item.raw_item_id,
            "score": item.score,
            "title": item.title,
            "category": item.category,
            "brand": item.brand,
            "price": item.price,
            "in_stock": item.in_stock,
            "explanation": None,  # filled by the route with `explain` (runtime.explain)
        }


class _Response(BaseModel):
    items: list[ItemOut] = Field(description="Best first; at most k.")
    model_version: str = Field(description="Version of the bundle that answered.")
    request_id: str = Field(description="Also in the X-Request-ID header; quote it in reports.")


class _Steered(_Response):
    applied_rules: list[str] = Field(
        default_factory=list,
        description="Ids of the merchandising rules applied to this list (pins, boosts, "
        "buries, hides), in rule order.",
    )


class RecommendResponse(_Steered):
    """Recommended items."""

    fallback: Literal["popular"] | None = Field(
        default=None,
        description='"popular" when the personalised model could not answer (unknown user, '
        "no history) and the most popular items were returned instead.",
    )
    personalisation: Literal["history", "realtime", "session"] | None = Field(
        default=None,
        description='"history": from the user\'s history in the model; "realtime": that, '
        "with items similar to what the user just viewed (/v1/events) blended in; "
        '"session": a user the model does not know, recommended from their recent events; '
        "null with the popular fallback.",
    )
    degraded: bool = Field(
        default=False,
        description="true when the online store (Redis) was unreachable and the service "
        "answered from its in-process store: recent events may be missing.",
    )
    history_used: Literal["request", "session", "session+request"] | None = Field(
        default=None,
        description='Which session history the list follows: "request" (inline `history`), '
        '"session" (events sent with `session_id`), both, or null (the user\'s own).',
    )
    unknown_history_items: int = Field(
        default=0, description="History events on item ids the model does not know (ignored)."
    )


class SearchResponse(_Steered):
    """Search results."""

    hint: str | None = Field(
        default=None, description="Why the list is empty and what to try; null otherwise."
    )
    degraded: bool = Field(
        default=False,
        description="true when the online store (Redis) was unreachable; the list itself "
        "is unaffected, but clicks on it may not be attributed.",
    )


class SimilarResponse(_Response):
    """Items similar to an item."""

    item_id: str = Field(description="The item the list is similar to.")
    fallback: Literal["popular"] | None = Field(
        default=None,
        description='"popular" when no neighbours are known and popular items of the same '
        "category were returned instead.",
    )


class PredictRequest(_Request):
    """Ask for click probabilities of items for a user."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "u42", "item_ids": ["sku-1", "sku-2"]}]},
    )

    user_id: str | None = Field(
        default=None,
        max_length=MAX_ID_CHARS,
        description="The shop's user id. Unknown or missing users are scored from an empty "
        'history (the response then says `"fallback": "no-history"`).',
    )
    item_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]] = Field(
        min_length=1,
        max_length=MAX_PREDICT_ITEMS,
        description=f"The items to score (1..{MAX_PREDICT_ITEMS}); every id must be known.",
    )


class PredictionOut(BaseModel):
    """One item's click probability."""

    item_id: str = Field(description="The shop's item id, as asked.")
    probability: float = Field(
        ge=0.0, le=1.0, description="Estimated probability that the user clicks or buys it."
    )


class PredictResponse(BaseModel):
    """Click probabilities, in request order."""

    predictions: list[PredictionOut] = Field(description="One entry per asked item, same order.")
    model_version: str = Field(description="Version of the bundle that answered.")
    request_id: str = Field(description="Also in the X-Request-ID header; quote it in reports.")
    fallback: Literal["no-history"] | None = Field(
        default=None,
        description='"no-history" when the user is unknown or has no history: the '
        "probabilities then rest on item features alone.",
    )


class EventIn(_Request):
    """One thing a shopper did (a search event carries its query)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "u42", "item_id": "sku-1", "event_type": "click", "request_id": "a1b2"}
            ],
            # the rule of `_search_needs_query`, in the schema (JSON Schema if/then)
            "if": {"properties": {"event_type": {"const": "search"}}, "required": ["event_type"]},
            "then": {"properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    )

    user_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The shop's user id.")
    item_id: str = Field(
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="The shop's item id; ids the model does not know are accepted (and counted).",
    )
    event_type: EventType = Field(description="view, click, cart, purchase, search or rating.")
    timestamp: UnixSeconds | None = Field(
        default=None,
        description="When it happened, UTC unix seconds; default: when the server received it.",
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="The search text that led to the event; required for search events.",
    )
    position: Count | None = Field(
        default=None, description="1-based rank the item was shown at, if known."
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REQUEST_ID_CHARS,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="The `request_id` of the response that listed the item: clicks, carts "
        "and purchases then count toward that model version's CTR and conversion.",
    )
    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="The visit this event belongs to: /v1/recommend with the same "
        "`session_id` recommends from the session's events.",
    )

    @model_validator(mode="after")
    def _search_needs_query(self) -> Self:
        if self.event_type is EventType.SEARCH and self.query is None:
            raise ValueError("a search event needs its query")
        return self


class EventsRequest(_Request):
    """A batch of events, written durably before the answer."""

    events: list[EventIn] = Field(
        min_length=1,
        max_length=MAX_EVENTS,
        description="1..max_events_per_batch events (default 500), in the order they happened.",
    )


class EventsResponse(BaseModel):
    """What was accepted."""

    accepted: int = Field(description="Events written to the event log (all of the batch).")
    unknown_items: int = Field(
        description="How many of them name an item the serving model does not know."
    )
    attributed: int = Field(
        description="Clicks, carts and purchases counted toward a served list's model version."
    )
    request_id: str = Field(description="Also in the X-Request-ID header.")
    degraded: bool = Field(
        default=False,
        description="true when the online store (Redis) was unreachable: the events are in "
        "the event log, but only this replica's in-process store saw them.",
    )


class ErrorResponse(BaseModel):
    """Every error: a stable code and a message saying what to do."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"code": "invalid-request", "message": "body.k: Input should be <= 100"},
                {"code": "unknown-item", "message": "item 'sku-x' is not in the catalog"},
            ]
        }
    )

    code: str = Field(description="Stable kebab-case code, e.g. invalid-request, not-ready.")
    message: str = Field(description="What went wrong and what to do about it.")


class HealthResponse(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready"]
    model_version: str | None = None
