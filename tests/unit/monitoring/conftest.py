"""Fixtures of the monitoring tests: the Prometheus tools, and a real app's /metrics.

The tools come from Debian's `prometheus` and `prometheus-alertmanager` packages;
`scripts/install_monitoring.sh` (run by `make test`) installs them, and the fixtures run
it once more when they are missing. A test skips only when they cannot be installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.exceptions import StarletteDeprecationWarning

from shelfwise.serve import ServeSettings, create_app
from shelfwise.serve.drift_monitor import DriftMonitor

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "deploy" / "monitoring"
INSTALL = ROOT / "scripts" / "install_monitoring.sh"
ADMIN_TOKEN = "monitoring-test-token-0123456789"  # noqa: S105 - a test-only token


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is not None:
        return path
    try:
        installed = subprocess.run(
            [str(INSTALL)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"{name} is missing and {INSTALL.name} failed: {exc}")
    path = shutil.which(name)
    if path is None:
        reason = (installed.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"{name} is missing and could not be installed ({INSTALL.name}: {reason})")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (Debian `prometheus`), installed when missing."""
    return _tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    """amtool (Debian `prometheus-alertmanager`), installed when missing."""
    return _tool("amtool")


@pytest.fixture(scope="session")
def monitoring_dir() -> Path:
    """deploy/monitoring of this checkout (read-only)."""
    return MONITORING


def load_serve_shop() -> ModuleType:
    """tests/unit/conftest.py as a module: the tiny shop's `build_bundle`."""
    path = ROOT / "tests" / "unit" / "conftest.py"
    spec = importlib.util.spec_from_file_location("shelfwise_tests_serve_shop", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Exported:
    """What a real app's /metrics exports.

    Attributes:
        text: the exposition, as scraped.
        labels: every series name (`x_total`, `x_bucket`, ...) -> its label names.
        values: series name -> label name -> the label values seen in samples.
    """

    text: str
    labels: dict[str, set[str]]
    values: dict[str, dict[str, set[str]]]


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def exported_series(text: str, declared: dict[str, tuple[str, ...]]) -> Exported:
    """Series names and label names of an exposition.

    `declared` gives the label names of families without samples yet (a labelled
    collector shows no samples until it is first used).
    """
    labels: dict[str, set[str]] = {}
    values: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(text):
        names = [family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))]
        for name in names:
            own = set(declared.get(family.name, ()))
            if name.endswith("_bucket"):
                own.add("le")
            labels.setdefault(name, set()).update(own)
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
            seen = values.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                seen.setdefault(label, set()).add(value)
    return Exported(text=text, labels=labels, values=values)


def declared_labels(metrics: object) -> dict[str, tuple[str, ...]]:
    """Family name -> label names of every collector of a `ServeMetrics`."""
    collectors: list[object] = []
    for value in vars(metrics).values():
        collectors.extend(value.values() if isinstance(value, dict) else [value])
    declared: dict[str, tuple[str, ...]] = {}
    for collector in collectors:
        name = getattr(collector, "_name", None)
        label_names = getattr(collector, "_labelnames", None)
        if isinstance(name, str) and isinstance(label_names, tuple):
            declared[name] = label_names
    return declared


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """/metrics of a real app over the serve tests' tiny bundle, after traffic.

    Champion and challenger (canary and shadow), recommend / search / similar /
    predict, attributed events, a drift measurement and an Alertmanager-style retrain:
    most labelled collectors then have samples whose label values can be checked.
    """
    root = tmp_path_factory.mktemp("monitoring-app")
    shop = load_serve_shop()
    bundle = shop.build_bundle(root / "champion")
    challenger = shop.build_bundle(root / "challenger")
    settings = ServeSettings(
        bundle_path=bundle,
        challenger_path=challenger,
        canary_fraction=0.5,
        shadow_fraction=1.0,
        event_log_dir=root / "events",
        drift_interval_s=0,
        admin_enabled=True,
        admin_token=ADMIN_TOKEN,
        retrain_command=f"{sys.executable} -c pass",
        verify_bundle=False,
        omp_threads=0,  # a test process: leave OMP_NUM_THREADS and the heap alone
        freeze_heap=False,
    )
    with TestClient(create_app(settings)) as client:
        now = int(time.time())
        events: list[dict[str, object]] = []
        for user in ("u1", "u2", "u3", "u4", "u5", "stranger"):
            listed = client.post("/v1/recommend", json={"user_id": user, "k": 3}).json()
            request_id = listed["request_id"]
            events.extend(
                {
                    "user_id": user,
                    "item_id": item["item_id"],
                    "event_type": event_type,
                    "request_id": request_id,
                    "timestamp": now,
                }
                for item in listed["items"][:1]
                for event_type in ("click", "cart", "purchase")
            )
        events.append({"user_id": "new", "item_id": "no-such-sku", "event_type": "view"})
        assert client.post("/v1/events", json={"events": events}).status_code == 202
        client.post("/v1/search", json={"query": "laptop", "k": 3})
        client.post("/v1/search", json={"query": "zzzz-nothing", "k": 3})
        client.get("/v1/items/sku-laptop/similar", params={"k": 3})
        client.post("/v1/predict", json={"user_id": "u1", "item_ids": ["sku-tea", "sku-mouse"]})
        client.get("/v1/no-such-route")
        alert = {"status": "firing", "labels": {"alertname": "ShelfwiseItemPopularityDrift"}}
        client.post(
            "/v1/admin/retrain",
            json={"alerts": [alert]},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        app = client.app
        state = app.state  # type: ignore[attr-defined]
        DriftMonitor(state.holder, state.metrics, settings, root / "events").measure_once()
        text = client.get("/metrics").text
        return exported_series(text, declared_labels(state.metrics))
