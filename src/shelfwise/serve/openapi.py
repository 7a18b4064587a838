"""The served OpenAPI document, made to state what the server really enforces.

FastAPI writes the document from the request models, which know only static bounds.
`install_contract` adds what the app enforces beyond them, so that clients and
schemathesis (tests/unit/serve/test_serve_contract.py) see one contract (issue 14):

* `k` at most `max_k` (settings), on every route that takes it;
* 413 `payload-too-large` on every route with a body (the request middleware's limit);
* links between routes (a listed item's id into `/v1/items/{item_id}/similar`), the
  paths that stateful testing follows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

from shelfwise.serve.settings import ServeSettings

_K_BODIES: Final = ("RecommendRequest", "SearchRequest")
_SIMILAR: Final = ("/v1/items/{item_id}/similar", "get")
# (path, method) whose 200 lists items, and the first item's id in it
_LISTS: Final = (
    ("/v1/recommend", "post"),
    ("/v1/search", "post"),
    _SIMILAR,
)


def install_contract(app: FastAPI, settings: ServeSettings) -> None:
    """Serve the document with the app's real limits (built once, on first request)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def contract() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()  # FastAPI's, cached on the app
            state_limits(document, settings)
            document_body_limit(document, settings)
            link_routes(document)
        return app.openapi_schema or {}

    app.openapi = contract  # type: ignore[method-assign]


def state_limits(document: dict[str, Any], settings: ServeSettings) -> None:
    """Write `maximum: max_k` on each `k` (bodies and the similar route's query)."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in _K_BODIES:
        field = schemas.get(name, {}).get("properties", {}).get("k")
        if field is not None:
            _cap_integer(field, settings.max_k)
    operation = document.get("paths", {}).get(_SIMILAR[0], {}).get(_SIMILAR[1], {})
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "k" and parameter.get("in") == "query":
            _cap_integer(parameter.get("schema", {}), settings.max_k)


def document_body_limit(document: dict[str, Any], settings: ServeSettings) -> None:
    """Add the 413 answer to every operation that takes a body."""
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" not in operation:
                continue
            operation.setdefault("responses", {})["413"] = {
                "description": f"The body is larger than {settings.max_body_bytes} bytes "
                "(code payload-too-large).",
                "content": {"application/json": {"schema": error}},
            }


def link_routes(document: dict[str, Any]) -> None:
    """Link each item list's first item to its similar items (OpenAPI links)."""
    paths = document.get("paths", {})
    target = paths.get(_SIMILAR[0], {}).get(_SIMILAR[1], {}).get("operationId")
    if target is None:
        return
    for path, method in _LISTS:
        ok = paths.get(path, {}).get(method, {}).get("responses", {}).get("200")
        if ok is None:
            continue
        ok.setdefault("links", {})["SimilarToFirstItem"] = {
            "operationId": target,
            "parameters": {"item_id": "$response.body#/items/0/item_id"},
            "description": "Items similar to the first item of this list.",
        }


def _cap_integer(schema: dict[str, Any], maximum: int) -> None:
    """Set `maximum` on an integer schema, or on the integer branch of an `anyOf`."""
    branches = schema.get("anyOf", [schema])
    for branch in branches:
        if branch.get("type") == "integer":
            branch["maximum"] = maximum
