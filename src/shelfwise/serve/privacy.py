"""Privacy at the API edge: user ids hashed before any route sees them; logs redacted.

`PseudonymizeMiddleware` rewrites request bodies before they are parsed: the `user_id`
of a JSON object body, and each `events[].user_id`, become their pseudonyms
(`shelfwise.privacy`), and each `events[].query` is what `privacy.log_queries` allows.
So every route, and everything a route writes (event log, online store, canary
assignment, traffic watch), sees only pseudonyms, routes added later included. The
mapping is the batch side's, so a raw id finds the list precomputed for its pseudonym.

Rewriting costs a JSON parse, one HMAC per id and a dump of bodies that mention
`user_id` (22 us for a recommend body on the shared 2-core machine, 6 us of it the
parse; benchmarks/privacy_edge.py), and nothing when privacy is off. A body that is
not valid JSON is passed on untouched: the route answers 422.

`AccessLogFilter` keeps raw ids out of uvicorn's access log: the id in
`/v1/users/{id}` and `user_id=` query parameters are replaced by `<redacted>`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.privacy import UserPrivacy
from shelfwise.serve.schemas import MAX_ID_CHARS

ACCESS_LOGGER: Final = "uvicorn.access"
REDACTED: Final = "<redacted>"
_USER_PATH: Final = re.compile(r"(/v1/users/)[^/?\s]+")
_USER_PARAM: Final = re.compile(r"([?&](?:user_id|raw_user_id)=)[^&\s]*")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_USER_KEY: Final = "user_id"


def redact_path(path: str) -> str:
    """A request path (with its query string) without raw user ids."""
    return _USER_PARAM.sub(r"\1" + REDACTED, _USER_PATH.sub(r"\1" + REDACTED, path))


class AccessLogFilter(logging.Filter):
    """Redacts user ids in uvicorn's access log lines (its args: client, method, path,
    http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the path argument; never drop a line."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_access_log_filter() -> None:
    """Add the filter to uvicorn's access logger once per process."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogFilter) for f in access.filters):
        access.addFilter(AccessLogFilter())


class PseudonymizeMiddleware:
    """Replace user ids in JSON bodies by their pseudonyms (and redact event queries).

    Placed inside `RequestContextMiddleware`, which has already refused bodies above the
    size limit, so the body read here is bounded.

    Args:
        app: the wrapped ASGI app.
        privacy: the server's privacy settings with their key.
    """

    def __init__(self, app: ASGIApp, *, privacy: UserPrivacy) -> None:
        """Wrap `app`."""
        self.app = app
        self.privacy = privacy
        self.hash_users = privacy.enabled
        self.redact_queries = privacy.config.log_queries != "full"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the body of a POST/PUT/PATCH under /v1/ when it names users or queries."""
        if (
            scope["type"] != "http"
            or scope.get("method") not in _BODY_METHODS
            or not str(scope.get("path", "")).startswith("/v1/")
            or not (self.hash_users or self.redact_queries)
        ):
            await self.app(scope, receive, send)
            return
        body, last = await _read_body(receive)
        rewritten = self._rewrite(body)
        if rewritten is not None:
            body = rewritten
            MutableHeaders(scope=scope)["content-length"] = str(len(body))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return last if last is not None else await receive()

        await self.app(scope, replay, send)

    def _rewrite(self, body: bytes) -> bytes | None:
        """The body with pseudonyms, or None when nothing changes."""
        if b'"user_id"' not in body and not (self.redact_queries and b'"query"' in body):
            return None
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None  # the route refuses it with 422 invalid-request
        if not isinstance(document, dict):
            return None
        changed = self._user(document)
        events = document.get("events")
        if isinstance(events, list):
            for event in events:
                if isinstance(event, dict):
                    changed = self._user(event) | self._query(event) or changed
        return json.dumps(document, ensure_ascii=False).encode("utf-8") if changed else None

    def _user(self, record: dict[str, Any]) -> bool:
        value = record.get(_USER_KEY)
        if not self.hash_users or not isinstance(value, str):
            return False
        if not value or len(value) > MAX_ID_CHARS:
            return False  # left for the route to refuse with its usual 422
        record[_USER_KEY] = self.privacy.user(value)
        return True

    def _query(self, event: dict[str, Any]) -> bool:
        value = event.get("query")
        if not self.redact_queries or not isinstance(value, str):
            return False
        event["query"] = self.privacy.query(value)
        return True


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole request body, and a non-body message met on the way (disconnect)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None
