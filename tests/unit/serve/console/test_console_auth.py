"""Who may open the console: the token, the session cookie, an auth proxy's header."""

from __future__ import annotations

import time
from pathlib import Path

from tests.unit.serve.conftest import ClientFactory

from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings
from shelfwise.serve.console.auth import COOKIE, SESSION_S, session_value

TOKEN = "console-auth-4Kx9Qm2Wv7Lp1Zt8Hc5Nb3Rf"  # noqa: S105 - a test-only token
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _settings(tmp_path: Path, **values: object) -> ServeSettings:
    return ServeSettings(bundle_path=None, event_log_dir=tmp_path / "events", **values)  # type: ignore[arg-type]


def test_the_token_gives_a_session_cookie_that_is_not_the_token(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    client = make_client(_settings(tmp_path, admin_enabled=True, admin_token=TOKEN), engine=engine)
    assert client.get("/console/audit", follow_redirects=False).headers["location"] == (
        "/console/login?next=/console/audit"
    )
    refused = client.post("/console/login", content="token=wrong&next=/console/audit", headers=FORM)
    assert refused.status_code == 401
    assert COOKIE not in client.cookies
    # a login never sends the browser to another site
    answer = client.post(
        "/console/login",
        content=f"token={TOKEN}&next=//evil.example/x",
        headers=FORM,
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console/versions"
    cookie = client.cookies[COOKIE]
    assert TOKEN not in cookie
    assert client.get("/console/audit").status_code == 200
    assert client.get("/console/audit", headers={"Authorization": f"Bearer {TOKEN}"}).is_success


def test_an_expired_or_forged_session_is_refused(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, admin_enabled=True, admin_token=TOKEN)
    client = make_client(settings, engine=engine)
    stale = session_value(settings, int(time.time()) - SESSION_S - 60)
    forged = f"{int(time.time())}.{'0' * 64}"
    for value in (stale, forged):
        client.cookies.set(COOKIE, value, path="/console")
        answer = client.get("/console/versions", headers={"HX-Request": "true"})
        assert answer.status_code == 401
        assert answer.headers["HX-Redirect"] == "/console/login"


def test_an_auth_proxy_header_logs_in_without_the_token(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, console_auth_header="X-Forwarded-Email")
    client = make_client(settings, engine=engine)
    page = client.get("/console/versions", headers={"X-Forwarded-Email": "ops@shop.example"})
    assert page.status_code == 200
    assert "ops@shop.example" in page.text
    odd = client.get("/console/versions", headers={"X-Forwarded-Email": "<b>ops</b>"})
    assert "&lt;b&gt;ops&lt;/b&gt;" in odd.text  # what the pages show is escaped
    assert client.get("/console/versions", follow_redirects=False).status_code == 303
    assert client.get("/v1/admin/models").status_code == 404  # the header opens no admin API


def test_no_console_without_a_way_to_log_in(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    client = make_client(_settings(tmp_path), engine=engine)
    assert client.get("/console/versions").status_code == 404
    off = _settings(tmp_path, admin_enabled=True, admin_token=TOKEN, console_enabled=False)
    assert make_client(off, engine=engine).get("/console/login").status_code == 404
