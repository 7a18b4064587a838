"""`PUT /v1/items` and `DELETE /v1/items/{item_id}`: the catalog, updated online.

Admin routes (the admin bearer token), mounted with the admin routes. A request is all
or nothing: every row is checked first, and one bad row answers 422 naming each bad
row's index and reason, with nothing applied. Then, in this order:

1. the changes are written to the catalog log and fsync'd (`stores/catalog_log.py`;
   a failure is 503 `event-log-unavailable` and nothing changed);
2. they are applied to the live catalog (`runtime/live_catalog.py`): every served
   engine sees them from the next request on;
3. they are added to the online store's catalog stream (Redis), which every other
   replica follows (`stores/catalog_sync.py`); `propagated` says whether that worked.

At start the server replays the catalog log, then reads the stream, before it answers
(`LiveCatalogService.replay`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam

from shelfwise.errors import NotReadyError, RequestError, UnknownItemError
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.live_catalog import LiveCatalog
from shelfwise.serve.deps import ServiceDep, get_engine
from shelfwise.serve.routes.admin import require_admin
from shelfwise.serve.schemas import MAX_ID_CHARS, ErrorResponse
from shelfwise.serve.schemas_catalog import ItemsRequest, ItemsResponse
from shelfwise.stores.catalog_log import (
    DELETE,
    UPSERT,
    CatalogChange,
    ChangeClock,
    append_changes,
    open_catalog_log,
    read_catalog_changes,
)
from shelfwise.stores.event_log import EventLog

logger = logging.getLogger("shelfwise.serve")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid rows (code invalid-request): the message names each bad "
        "row's index (`body.items.<i>`) and reason; nothing of the request was applied.",
    },
    503: {
        "model": ErrorResponse,
        "description": "The catalog log cannot be written; nothing changed, retry "
        "(code event-log-unavailable).",
    },
}


@dataclass
class LiveCatalogService:
    """The live catalog of one server: its state, log, clock and replication stream."""

    live: LiveCatalog
    log: EventLog
    clock: ChangeClock
    bus: Any = None  # RedisCatalogBus when the online store is Redis
    follower: Any = None  # CatalogFollower of `bus`

    def replay(self) -> int:
        """Apply the catalog log, then the stream (at start, before answering).

        Returns:
            The number of changes read.
        """
        changes = list(read_catalog_changes(self.log.root))
        if changes:
            self.live.apply(changes)
        count = len(changes)
        if self.follower is not None:
            count += self.follower.catch_up()
        logger.info("live catalog: %d changes replayed (version %d)", count, self.live.version)
        return count

    def start(self) -> None:
        """Replay (`replay`), then follow the other replicas' changes on a thread."""
        self.replay()
        if self.follower is not None:
            self.follower.start()

    def close(self) -> None:
        """Stop following the stream, close the log; detach every catalog."""
        if self.follower is not None:
            self.follower.stop()
        if self.bus is not None:
            self.bus.close()
        self.log.close()
        self.live.detach()


def open_live_catalog(
    log_dir: Path, online_store_url: str, timeout: float, *, hide_out_of_stock: bool = False
) -> LiveCatalogService:
    """The live catalog of a server, replicated through Redis when the store is Redis.

    `hide_out_of_stock` (`serve.hide_out_of_stock`) goes to every engine it serves.
    """
    live = LiveCatalog(hide_out_of_stock=hide_out_of_stock)
    clock = ChangeClock()
    service = LiveCatalogService(live, open_catalog_log(log_dir), clock)
    if online_store_url.split("://", 1)[0].lower() in ("redis", "rediss"):
        from shelfwise.stores.catalog_sync import CatalogFollower, RedisCatalogBus

        service.bus = RedisCatalogBus(online_store_url, timeout=max(timeout, 0.5))
        service.follower = CatalogFollower(service.bus, live.apply, skip_origin=clock.origin)
    return service


async def get_live(request: Request) -> LiveCatalogService:
    """The app's live catalog."""
    live: LiveCatalogService = request.app.state.live_catalog
    return live


async def optional_engine(request: Request) -> Engine | None:
    """The champion, or None before one is loaded (updates are still accepted)."""
    try:
        return await get_engine(request)
    except NotReadyError:
        return None


LiveDep = Annotated[LiveCatalogService, Depends(get_live)]
OptionalEngineDep = Annotated[Engine | None, Depends(optional_engine)]

router = APIRouter(tags=["catalog"], dependencies=[Depends(require_admin)], responses=_ERRORS)


@router.put(
    "/v1/items",
    response_model=ItemsResponse,
    summary="Create or update items",
    description="Upsert a batch of items: new products, price and stock changes, hiding. "
    "All or nothing: one invalid row (a wrong type, a negative price, an unknown field) "
    "answers 422 naming every bad row (`body.items.<i>.<field>`) and its reason, and "
    "nothing of the request is applied. Rows apply in order (an id given twice: the later "
    "row wins). A new item without a title is kept but not served until a title arrives "
    "(`pending_items`). "
    "Answers 200 once the batch is in the durable catalog log; from the next request on "
    "search, recommendations and similar items serve it (new items through a side index "
    "and content similarity, before any event), and other replicas within the bound "
    "measured in benchmarks/RESULTS.md.",
)
def put_items(
    body: ItemsRequest, service: ServiceDep, live: LiveDep, engine: OptionalEngineDep
) -> ItemsResponse:
    """Apply a batch of item updates."""
    limit = service.settings.max_items_per_batch
    if len(body.items) > limit:
        raise RequestError(
            f"body.items: {len(body.items)} items in one request; send at most {limit}"
        )
    new_items = pending = 0
    titled: set[str] = set()
    for item in body.items:  # an id given twice: rows apply in order, the later wins
        current = live.live.current(item.item_id)
        known = (engine is not None and item.item_id in engine.catalog.index) or (
            current is not None and bool(current.get("title"))
        )
        if item.title:
            titled.add(item.item_id)
        if not known and item.item_id not in titled:
            pending += 1
        elif not known and item.title:
            new_items += 1
    changes = [
        CatalogChange(
            UPSERT, item.item_id, item.changed_fields(), live.clock.next(), live.clock.origin
        )
        for item in body.items
    ]
    return _commit(changes, new_items, service, live, pending=pending)


@router.delete(
    "/v1/items/{item_id}",
    response_model=ItemsResponse,
    responses={404: {"model": ErrorResponse, "description": "Unknown item (code unknown-item)."}},
    summary="Delete an item",
    description="The item leaves search, recommendations and similar items from the next "
    "request on (durably logged first, replicated like PUT). Deleting it again answers "
    "200; an id neither the model nor an update knows is 404. A later PUT brings it back.",
)
def delete_item(
    item_id: Annotated[
        str, PathParam(min_length=1, max_length=MAX_ID_CHARS, description="The shop's item id.")
    ],
    service: ServiceDep,
    live: LiveDep,
    engine: OptionalEngineDep,
) -> ItemsResponse:
    """Delete one item."""
    known = live.live.current(item_id) is not None or (
        engine is not None and item_id in engine.catalog.index
    )
    if not known:
        raise UnknownItemError(
            f"item {item_id[:64]!r} is neither in the served catalog nor added online; "
            "nothing to delete"
        )
    change = CatalogChange(DELETE, item_id, {}, live.clock.next(), live.clock.origin)
    return _commit([change], 0, service, live)


def _commit(
    changes: list[CatalogChange],
    new_items: int,
    service: ServiceDep,
    live: LiveCatalogService,
    *,
    pending: int = 0,
) -> ItemsResponse:
    """Log durably, apply, publish: see the module docstring."""
    append_changes(live.log, changes)  # a failure here (503) changed nothing
    version = live.live.apply(changes)
    propagated = False
    if live.bus is not None:
        try:
            live.bus.publish(changes)
            propagated = True
        except Exception as exc:  # noqa: BLE001 - any redis-py failure: applied here only
            logger.warning("catalog stream: cannot publish %d changes: %s", len(changes), exc)
    return ItemsResponse(
        applied=len(changes),
        new_items=new_items,
        pending_items=pending,
        catalog_version=version,
        propagated=propagated,
        request_id=service.request_id,
    )
