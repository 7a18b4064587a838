"""The experiments' verdicts, from the server's own `GET /v1/admin/experiments`.

When the admin routes are mounted (the experiments API is one of them), the console
asks it in-process: one ASGI request through the whole app, with the admin
token, so the page shows exactly what the API answers (its auth, its errors) without
a network hop or a second implementation of the statistics. Expected body:
`{"experiments": [{"name", "mode", "primary_metric", "variants": [{"name", "version",
"share", "lists", "clicks", "conversions", "rate"}], "verdict", "lift": {"estimate",
"ci_low", "ci_high"}, "p_value", "guardrails": [...]}]}`; anything else is shown as
an error line, never a failed page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
from starlette.types import ASGIApp, Message

EXPERIMENTS_PATH: Final = "/v1/admin/experiments"


@dataclass
class Experiments:
    """What the experiments API answered."""

    available: bool
    experiments: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


async def asgi_get(
    app: ASGIApp, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """`GET path` through `app` in this process; the status and the body.

    Hand-written (20 lines) rather than httpx's ASGI transport: httpx is a test
    dependency, not one of the serve extra's.
    """
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"console"), *headers],
        "client": ("127.0.0.1", 0),
        "server": ("console", 80),
        "state": {},
    }
    status = 500
    body = bytearray()
    sent = False
    done = anyio.Event()

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the "client" leaves only once the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    return status, bytes(body)


async def read_experiments(app: Any, token: str) -> Experiments:
    """The experiments and their verdicts, or why they could not be read.

    Args:
        app: the server's app.
        token: the admin token ("": no admin routes, so no experiments API either).
    """
    if not token:
        return Experiments(available=False)
    status, body = await asgi_get(
        app, EXPERIMENTS_PATH, [(b"authorization", f"Bearer {token}".encode())]
    )
    if status == 404:  # a server built without the experiments API
        return Experiments(available=False)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if status != 200 or not isinstance(document, dict):
        message = document.get("message") if isinstance(document, dict) else None
        return Experiments(True, error=f"{EXPERIMENTS_PATH} answered {status}: {message or ''}")
    experiments = document.get("experiments")
    if not isinstance(experiments, list):
        return Experiments(True, error=f"{EXPERIMENTS_PATH} answered without an experiments list")
    return Experiments(True, [item for item in experiments if isinstance(item, dict)])
