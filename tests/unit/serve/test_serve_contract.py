"""The API keeps its own OpenAPI contract (schemathesis over the app's /openapi.json).

Issue 14 found 19 mismatches: the k <= max_k limit missing from the schema, 400/413
answers undocumented, `0` accepted where the schema says boolean. Every route runs
here, admin ones with the token: valid and invalid inputs (stateless), then chains
that follow the schema's links (stateful). The example counts keep the default run
to a few seconds; `test_contract_holds_on_a_long_run` (slow) runs many more.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from tests.unit.serve.conftest import in_test_process

from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings, create_app

TOKEN = "contract-9Gk2Lp7Qx4Vb8Nz1Rt5Wy3Hd6Jf0Ms"  # noqa: S105 - a test-only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST_EXAMPLES = 6
LONG_EXAMPLES = 100


@pytest.fixture(scope="module")
def contract_app(
    audience_bundle_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The app over the tiny bundle with every optional part (audiences' last-activity
    times too, so `active_days` is answerable), admin routes on, reloads confined."""
    from fastapi.testclient import TestClient

    root = tmp_path_factory.mktemp("contract")
    (root / "bundles").mkdir()
    settings = ServeSettings(
        bundle_path=None,
        max_k=20,
        default_k=5,
        admin_enabled=True,
        admin_token=TOKEN,
        bundle_root=root / "bundles",
        event_log_dir=root / "events",
        catalog_log_dir=root / "catalog",  # PUT /v1/items writes here, not to the home
        drift_interval_s=0,
    )
    engine = load_engine(audience_bundle_path)
    app = create_app(in_test_process(settings), engine=engine)
    with warnings.catch_warnings(), TestClient(app):  # runs the lifespan
        warnings.simplefilter("ignore")
        yield app


def _schema(app: Any, examples: int) -> Any:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=examples,
        deterministic=True,
    )
    # An invalid body may also be too large: 413 (documented on every route with a
    # body) rejects it before parsing, which schemathesis does not count as a rejection.
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return loaded


def _check_every_operation(app: Any, examples: int) -> list[str]:
    """Run valid and invalid inputs through every operation; return the ones checked."""
    loaded = _schema(app, examples)
    checked = []
    for result in loaded.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def check(case: Any) -> None:
                case.call_and_validate(headers=AUTH)

            try:
                check()
            except Unsatisfiable:  # no invalid input exists (a route without parameters)
                if mode is GenerationMode.POSITIVE:
                    raise
        checked.append(f"{operation.method.upper()} {operation.path}")
    return checked


def test_every_route_keeps_its_contract(contract_app: Any) -> None:
    checked = _check_every_operation(contract_app, FAST_EXAMPLES)
    assert {"POST /v1/admin/reload", "DELETE /v1/admin/pin", "POST /v1/events"} <= set(checked)


def test_chains_of_calls_keep_the_contract(contract_app: Any) -> None:
    machine = _schema(contract_app, FAST_EXAMPLES).as_state_machine()

    class WithToken(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": AUTH}

    WithToken.run(
        settings=settings(
            max_examples=FAST_EXAMPLES,
            stateful_step_count=4,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )


def test_the_schema_states_the_real_limits(contract_app: Any) -> None:
    from fastapi.testclient import TestClient

    document = TestClient(contract_app).get("/openapi.json").json()
    requests = document["components"]["schemas"]
    k_bounds = [
        option
        for option in requests["RecommendRequest"]["properties"]["k"]["anyOf"]
        if option.get("type") == "integer"
    ]
    assert k_bounds == [{"type": "integer", "minimum": 1, "maximum": 20}]
    assert requests["SearchRequest"]["properties"]["query"]["maxLength"] == 256
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "post":
                assert "413" in operation["responses"], (method, path)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_contract_holds_on_a_long_run(contract_app: Any) -> None:
    _check_every_operation(contract_app, LONG_EXAMPLES)
    machine = _schema(contract_app, LONG_EXAMPLES).as_state_machine()

    class WithToken(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": AUTH}

    WithToken.run(
        settings=settings(
            max_examples=LONG_EXAMPLES,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
