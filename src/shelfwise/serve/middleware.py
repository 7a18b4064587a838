"""The one request middleware: request ids, body limit, metrics, last-resort 500s.

A pure ASGI middleware (no `BaseHTTPMiddleware`), placed inside Starlette's error
middleware, so it sees every response, including errors:

* `X-Request-ID`: an incoming sane token is kept, else a uuid4 hex is made; it is in
  `request.state.request_id` and on every response.
* Bodies above `max_body_bytes` get 413 `payload-too-large` before any parsing.
* `shelfwise_serve_requests_total` / `..._request_duration_seconds` by route template
  (unknown paths share one label value, so a scanner cannot blow up the series).
* An unexpected exception becomes 500 `internal` without a stack trace; the trace
  goes to the log with the request id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.serve.errors import (
    INTERNAL_CODE,
    PAYLOAD_TOO_LARGE_CODE,
    error_response,
    internal_message,
)
from shelfwise.serve.metrics import UNMATCHED_ROUTE, ServeMetrics

logger = logging.getLogger("shelfwise.serve")

REQUEST_ID_HEADER: Final = "X-Request-ID"
_SANE_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class _BodyTooLargeError(Exception):
    pass


class RequestContextMiddleware:
    """Request id, body limit, request metrics and last-resort error handling.

    Args:
        app: the wrapped ASGI app.
        metrics: the app's collectors.
        max_body_bytes: the largest request body accepted.
    """

    def __init__(self, app: ASGIApp, *, metrics: ServeMetrics, max_body_bytes: int) -> None:
        """Wrap `app`."""
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        headers = Headers(scope=scope)
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            body_receive = receive
            if scope.get("method", "GET") in _BODY_METHODS:
                body_receive = await self._buffered_body(headers, receive)
            await self.app(scope, body_receive, send_with_id)
        except _BodyTooLargeError:
            response = error_response(
                413,
                PAYLOAD_TOO_LARGE_CODE,
                f"the request body is larger than {self.max_body_bytes} bytes",
            )
            await response(scope, receive, send_with_id)
        except Exception:
            logger.exception("request %s failed", request_id)
            if response_started:
                raise
            response = error_response(500, INTERNAL_CODE, internal_message(request_id))
            await response(scope, receive, send_with_id)
        finally:
            self.metrics.observe_request(
                _route_label(scope),
                str(scope.get("method", "")),
                status,
                time.perf_counter() - started_at,
            )

    async def _buffered_body(self, headers: Headers, receive: Receive) -> Receive:
        """Read the whole (small) body, refusing it past the limit; return a replay."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _BodyTooLargeError
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return _replay([whole], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
