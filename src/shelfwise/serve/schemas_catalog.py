"""Request and response bodies of the catalog routes (`PUT /v1/items`, `DELETE /v1/items/{id}`).

Types are strict as in the rest of the API (`"5"` is not a price, `0` is not
`false`); a field left out keeps its current value, `null` clears it.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from shelfwise.serve.schemas import MAX_ID_CHARS

MAX_ITEMS: Final = 10_000  # static bound; the served limit is max_items_per_batch
MAX_TITLE_CHARS: Final = 1_000
MAX_DESCRIPTION_CHARS: Final = 10_000
MAX_LABEL_CHARS: Final = 256  # category, brand
MAX_ATTRIBUTES: Final = 64
NO_CONTROL_CHARACTERS: Final = r"^[^\x00-\x1f\x7f]*$"

AttributeValue = StrictStr | StrictInt | StrictFloat | StrictBool | None


class ItemIn(BaseModel):
    """One item to create or update; only the fields sent change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "item_id": "sku-earbuds",
                    "title": "小米 无线蓝牙耳机 Xiaomi Wireless Earbuds",
                    "category": "electronics",
                    "brand": "Xiaomi",
                    "price": 199.0,
                    "in_stock": True,
                },
                {"item_id": "sku-laptop", "in_stock": False},
            ]
        },
    )

    item_id: StrictStr = Field(
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=NO_CONTROL_CHARACTERS,
        description="The shop's item id (raw_item_id). An id the model does not know is a "
        "new item, served once it has a `title`.",
    )
    title: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TITLE_CHARS,
        description="Display and search text (any language; Chinese is segmented).",
    )
    description: StrictStr | None = Field(
        default=None, max_length=MAX_DESCRIPTION_CHARS, description="Longer searchable text."
    )
    category: StrictStr | None = Field(
        default=None, min_length=1, max_length=MAX_LABEL_CHARS, description="The category."
    )
    brand: StrictStr | None = Field(
        default=None, min_length=1, max_length=MAX_LABEL_CHARS, description="The brand."
    )
    price: StrictFloat | None = Field(
        default=None, ge=0, le=1e12, description="Price, >= 0 (null: unknown)."
    )
    in_stock: StrictBool | None = Field(
        default=None,
        description="false: sold out (filtered out by `in_stock: true`); null: unknown.",
    )
    hidden: StrictBool | None = Field(
        default=None,
        description="true: the item leaves every endpoint (search, recommendations, "
        "similar items) until set false again; its data is kept.",
    )
    attributes: dict[str, AttributeValue] | None = Field(
        default=None,
        max_length=MAX_ATTRIBUTES,
        description="The shop's own flat attributes (tag, margin, ...): kept in the catalog "
        "log for the next retrain.",
    )

    def changed_fields(self) -> dict[str, Any]:
        """The fields the request set (`item_id` aside), with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "item_id"}


class ItemsRequest(BaseModel):
    """A batch of item updates, applied all together or not at all."""

    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="1..max_items_per_batch items (default 1000), applied in order.",
    )


class ItemsResponse(BaseModel):
    """What a catalog update changed."""

    applied: int = Field(description="Items changed (all of the request's).")
    new_items: int = Field(
        description="New items served from now on (ids the serving model does not know)."
    )
    pending_items: int = Field(
        default=0,
        description="New items without a title yet: kept durably, served once a later "
        "update gives them a title.",
    )
    catalog_version: int = Field(
        description="This server's live catalog version after the update (one more per "
        "applied request or replicated batch)."
    )
    propagated: bool = Field(
        description="true when the update reached the online store's catalog stream, so "
        "every replica applies it; false with a single replica (memory://) or while Redis "
        "is unreachable (the update is durable and applied here only)."
    )
    request_id: str = Field(description="Also in the X-Request-ID header.")
