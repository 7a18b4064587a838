"""The operator console in a real browser: Playwright driving Debian's Chromium.

One server per module (uvicorn on a free loopback port, in a thread) follows a local
registry with two versions of the tiny bundle (champion v1, challenger v2 at a 50%
canary share); traffic, clicks, a catalog update, a rules version, a gate decision and
a canary decision are made first, so every page has real data to show. Screenshots go
to $SHELFWISE_CONSOLE_SCREENSHOTS (scripts/console_screenshots.py points it at
docs/console/), else to a temporary folder kept with the test's artifacts.

Skipped, never failed, when Playwright or the browser is missing
(`scripts/install_chromium.sh`, run by `make services`, installs it).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.conftest import free_port

from shelfwise.loop.canary import Verdict
from shelfwise.publish.gate import GateResult, RuleOutcome
from shelfwise.registry.local import LocalRegistry
from shelfwise.serve import ServeSettings, create_app

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)

CHROMIUM = Path(os.environ.get("SHELFWISE_CHROMIUM", "/usr/bin/chromium"))
TOKEN = "console-7Hq2Wm9Xc4Rz8Lb1Nt5Vy3Kd6Pf0Gs"  # noqa: S105 - a test-only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "tiny"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"no Chromium at {CHROMIUM}: run scripts/install_chromium.sh (make services)",
    ),
]


@dataclass(frozen=True)
class Console:
    """The running server and where screenshots go."""

    url: str
    shots: Path


def _registry(home: Path, bundle_path: Path, second_bundle: Path) -> Path:
    """A local registry: v1 champion, v2 challenger, both with the gate's tag."""
    root = home / "registry"
    registry = LocalRegistry(root, model_name=MODEL)
    registry.publish(bundle_path)
    registry.publish(second_bundle)
    registry.promote("1", "gate: promoted")
    registry.mark_challenger("2", "gate: challenger")
    registry.set_tag("1", "shelfwise.gate", "promoted")
    registry.set_tag("2", "shelfwise.gate", "challenger")
    return root


def _gate_and_canary(home: Path) -> None:
    """The gate document of the bundles' run, and one canary verdict, as the batch and
    control roles write them."""
    rules = [
        RuleOutcome("recommend.ndcg@10", "min_delta", -0.01, 0.5, 0.45, 0.05, True, False, "ok"),
        RuleOutcome("recommend.p99_latency_ms", "max", 50.0, 3.0, None, None, True, False, "ok"),
    ]
    gate = GateResult(
        decision="promoted",
        challenger={"version": "1"},
        champion=None,
        rules=rules,
        metrics={"challenger": {"recommend.ndcg@10": 0.5}, "champion": None},
        latency_ms={},
        k_values=[10],
        curves={},
    )
    gate.write(home / "runs" / "test-run")
    kpis = {
        "champion": {"lists": 400.0, "clicks": 40.0, "ctr": 0.10},
        "challenger": {"lists": 410.0, "clicks": 53.0, "ctr": 0.129},
    }
    verdicts = [
        Verdict("wait", "1", "2", kpis, ["ctr lift +29% not yet significant (p=0.08)"], at=at)
        for at in ("2026-12-06T09:00:00Z", "2026-12-06T09:30:00Z")
    ]
    folder = home / "canary"
    folder.mkdir(parents=True)
    lines = [json.dumps(verdict.to_json()) for verdict in verdicts]
    (folder / "decisions.jsonl").write_text("\n".join([*lines, "not json"]) + "\n")


def _traffic(client: httpx.Client) -> None:
    """An experiment, lists, attributed clicks, a catalog update and a rules version."""
    experiment = {
        "name": "knn-ab",
        "variants": [
            {"name": "control", "version": "1", "share": 0.5},
            {"name": "treatment", "version": "2", "share": 0.5},
        ],
    }
    started = client.post("/v1/admin/experiments", json=experiment, headers=AUTH)
    assert started.status_code == 201, started.text
    for user in ("u1", "u2", "u3", "u4", "u5"):
        listed = client.post("/v1/recommend", json={"user_id": user, "k": 3}).json()
        click = {
            "user_id": user,
            "item_id": listed["items"][0]["item_id"],
            "event_type": "click",
            "request_id": listed["request_id"],
        }
        assert client.post("/v1/events", json={"events": [click]}).is_success
    update = {"items": [{"item_id": "sku-tea", "price": 99.0}]}
    assert client.put("/v1/items", json=update, headers=AUTH).is_success
    rule = {"id": "pin-thinkpad", "action": "pin", "items": ["sku-laptop"], "position": 1}
    rules = client.put("/v1/admin/rules", json={"rules": [rule]}, headers=AUTH)
    assert rules.status_code == 200, rules.text


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, bundle_path: Path, facts: Any
) -> Iterator[Console]:
    """A live server with the console, and some history to show."""
    import uvicorn

    home = tmp_path_factory.mktemp("console-home")
    second = facts.build_bundle(tmp_path_factory.mktemp("console-v2"), with_similar=False)
    settings = ServeSettings(
        bundle_path=None,
        max_k=20,
        default_k=5,
        admin_enabled=True,
        admin_token=TOKEN,
        registry_uri=str(_registry(home, bundle_path, second)),
        registry_model=MODEL,
        canary_fraction=0.5,
        drift_interval_s=0,
        console_refresh_s=1,  # the KPI test waits for one automatic refresh
        omp_threads=0,
        freeze_heap=False,
    )
    _gate_and_canary(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHELFWISE_HOME", str(home))  # the state folder the app reads
        app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the server thread ended before it started listening"
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as client:
        _traffic(client)
    shots = Path(os.environ.get("SHELFWISE_CONSOLE_SCREENSHOTS") or home / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    yield Console(url, shots)
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (never a downloaded browser: `executable_path`)."""
    with playwright_api.sync_playwright() as playwright:
        # --no-sandbox: the test machine runs as root, where Chromium's sandbox refuses
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _login(page: Any, console: Console, path: str) -> None:
    page.goto(f"{console.url}{path}")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


def _shot(page: Any, console: Console, name: str) -> None:
    page.screenshot(path=str(console.shots / f"{name}.png"), full_page=True)


def test_login_is_refused_without_the_token(page: Any, console: Console) -> None:
    page.goto(f"{console.url}/console/versions")
    assert "/console/login" in page.url  # a page without a login goes to the form
    assert page.locator("#served").count() == 0
    page.fill("input[name=token]", "not-the-token")
    with page.expect_response(f"{console.url}/console/login") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert "not the admin token" in page.inner_text("#login-error")
    _shot(page, console, "login")
    live = f"{console.url}/console/kpis/live"
    assert page.request.get(live, headers={"HX-Request": "true"}).status == 401  # htmx
    assert page.request.get(live, max_redirects=0).status == 303  # to the login form
    assert page.request.post(f"{console.url}/console/drift/measure").status == 401


def test_versions_page_shows_aliases_canary_and_gate(page: Any, console: Console) -> None:
    _login(page, console, "/console/versions")
    champion = page.locator("article[data-role=champion]")
    challenger = page.locator("article[data-role=challenger]")
    assert "v1" in champion.inner_text()
    assert "Decision: promoted" in champion.inner_text()
    assert "50% of users" in challenger.inner_text()
    assert "Decision (registry tag): challenger" in challenger.inner_text()
    registry = page.inner_text("#registry")
    assert "champion" in registry
    assert "challenger" in registry
    assert "v2" in registry
    page.wait_for_selector(".chart .uplot")  # the metrics-over-versions chart drew
    _shot(page, console, "versions")


def test_kpis_page_shows_live_counts_and_the_canary_verdict(page: Any, console: Console) -> None:
    _login(page, console, "/console/kpis")
    table = page.inner_text("#kpi-table")
    assert "v1" in table
    assert "v2" in table
    clicks = sum(
        int(row.locator("td").nth(4).inner_text())
        for row in page.locator("#kpi-table tr[data-version]").all()
    )
    assert clicks == 5  # one attributed click per user above
    decisions = page.inner_text("#canary-decisions")
    assert decisions.count("ctr lift +29%") == 2  # both lines; the broken one skipped
    assert "knn-ab" in page.inner_text("#experiments")  # GET /v1/admin/experiments
    with page.expect_response(f"{console.url}/console/kpis/live") as refreshed:
        pass  # htmx reloads the fragment on its own
    assert refreshed.value.status == 200
    _shot(page, console, "kpis")


def test_drift_page_measures_on_demand(page: Any, console: Console) -> None:
    _login(page, console, "/console/drift")
    assert page.locator("#drift-never").count() == 1  # the drift thread is off here
    page.click("#drift-measure")
    page.wait_for_selector("#drift-measured-at")
    assert page.locator("[data-gauge]").count() == 4
    _shot(page, console, "drift")


def test_audit_page_lists_catalog_and_rules_changes(page: Any, console: Console) -> None:
    _login(page, console, "/console/audit")
    assert "price=99.0" in page.inner_text("#catalog-audit")
    assert "pin pin-thinkpad" in page.inner_text("#rules-audit")
    _shot(page, console, "audit")


def test_playground_returns_items_with_explanations(page: Any, console: Console) -> None:
    _login(page, console, "/console/playground")
    page.fill("#pg-user", "u1")
    page.click("#pg-submit")
    page.wait_for_selector("#pg-results tr.pg-item")
    assert page.locator("#pg-results tr.pg-item").count() == 5
    assert page.locator("#pg-results .reasons li").count() > 0
    _shot(page, console, "playground")
    page.select_option("#pg-endpoint", "search")
    page.fill("#pg-query", "laptop")
    page.click("#pg-submit")
    page.wait_for_function(
        "document.querySelector('#pg-meta').textContent.includes('items from model')"
        " && document.querySelector('#pg-results tr.pg-item td:nth-child(2)')"
        ".textContent === 'sku-laptop'"
    )
