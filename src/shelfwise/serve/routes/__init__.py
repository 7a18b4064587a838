"""The API routes, one module per resource; `ROUTERS` lists them in OpenAPI order."""

from __future__ import annotations

from fastapi import APIRouter

from shelfwise.serve.routes import audience, events, health, items, predict, recommend, search

ROUTERS: tuple[APIRouter, ...] = (
    recommend.router,
    search.router,
    items.router,
    audience.router,
    predict.router,
    events.router,
    health.router,
)

__all__ = ["ROUTERS"]
