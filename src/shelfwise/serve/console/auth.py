"""Who may open the console: the admin token, a session cookie, or an auth proxy's header.

Three ways in, checked in this order by `console_user`:

1. **An auth proxy** (the OIDC seam): with `serve.console_auth_header` set (e.g.
   `X-Forwarded-Email`, what oauth2-proxy sends), a request carrying that header is the
   user it names. The server trusts the header blindly, so set it only when every
   request reaches the server through that proxy and the proxy drops the header from
   clients' requests (oauth2-proxy does).
2. **`Authorization: Bearer <admin token>`**: the token of `/v1/admin/*` (scripts, curl).
3. **The session cookie** that `POST /console/login` sets after the admin token was
   typed into the login form: `<issued unix seconds>.<HMAC-SHA256(token, issued)>`,
   valid `SESSION_S`. The cookie never holds the token itself, so a copied cookie
   cannot call `/v1/admin/*`, and changing the token ends every session. HttpOnly,
   SameSite=Strict (another site's page cannot post the console's forms with it), and
   Secure when the request came over https.

Anything else is `ConsoleLoginRequired`: a page is redirected to the login form, an
htmx fragment or a form post answers 401.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from shelfwise.serve.settings import ServeSettings

COOKIE: Final = "shelfwise_console"
SESSION_S: Final = 12 * 3600  # one working day; the form asks again after it
PREFIX: Final = "/console"
_BEARER: Final = "bearer "
_ADMIN_USER: Final = "admin"


class ConsoleLoginRequired(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The request carries no valid login; `login_redirect` answers it."""


def _token(settings: ServeSettings) -> str:
    """The admin token, or "" when none is usable (the console then needs the proxy)."""
    if not settings.admin_enabled or settings.admin_token is None:
        return ""
    return settings.admin_token.get_secret_value()


def session_value(settings: ServeSettings, issued: int) -> str:
    """The session cookie's value for a login at `issued` (unix seconds)."""
    signature = hmac.new(
        _token(settings).encode(), f"console-session:{issued}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{issued}.{signature}"


def token_matches(settings: ServeSettings, given: str) -> bool:
    """True when `given` is the admin token (compared in constant time)."""
    expected = _token(settings)
    return bool(expected and given) and hmac.compare_digest(given.encode(), expected.encode())


def _session_valid(settings: ServeSettings, value: str, now: float) -> bool:
    issued_text, _, _ = value.partition(".")
    if not _token(settings) or not issued_text.isdigit():
        return False
    issued = int(issued_text)
    if not 0 <= now - issued <= SESSION_S:
        return False
    return hmac.compare_digest(value.encode(), session_value(settings, issued).encode())


def user_of(request: Request, settings: ServeSettings) -> str | None:
    """The signed-in user of `request`, or None (see the module doc for the order)."""
    header = settings.console_auth_header
    if header is not None:
        proxied = request.headers.get(header, "").strip()
        if proxied:
            return proxied[:200]
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith(_BEARER) and token_matches(
        settings, authorization[len(_BEARER) :]
    ):
        return _ADMIN_USER
    cookie = request.cookies.get(COOKIE, "")
    if cookie and _session_valid(settings, cookie, time.time()):
        return _ADMIN_USER
    return None


async def console_user(request: Request) -> str:
    """Dependency of every console route: the signed-in user.

    Raises:
        ConsoleLoginRequired: no valid login on the request.
    """
    user = user_of(request, request.app.state.settings)
    if user is None:
        raise ConsoleLoginRequired
    return user


def login_redirect(request: Request, _exc: Exception) -> Response:
    """A page goes to the login form (back here afterwards); anything else gets 401."""
    if request.method == "GET" and "hx-request" not in request.headers:
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
    return Response(
        "console login required", status_code=401, headers={"HX-Redirect": f"{PREFIX}/login"}
    )


def safe_next(target: str) -> str:
    """Where to go after the login: a console page only (never another site)."""
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/versions"


def set_session(response: Response, request: Request) -> None:
    """Give `response` a fresh session cookie."""
    settings: ServeSettings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        session_value(settings, int(time.time())),
        max_age=SESSION_S,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
