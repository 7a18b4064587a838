"""Apps over the tiny bundle of `tests/unit/conftest.py`."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from shelfwise.config import load_config
from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings, create_app

with warnings.catch_warnings():
    # starlette 1.x asks for `httpx2` and warns once on import when it finds httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


# Fields whose production defaults a test process must not take (tests/conftest.py sets
# the test process's values as SHELFWISE_SERVE_* variables, which only the config loader
# reads): set OMP_NUM_THREADS for every later test, gc.freeze() the whole test heap.
_PROCESS_FIELDS = ("omp_threads", "freeze_heap")


def in_test_process(settings: ServeSettings | None) -> ServeSettings | None:
    """`settings` with the test process's `_PROCESS_FIELDS` where the test set none."""
    if settings is None:
        return None
    process = load_config().serve
    update = {
        name: getattr(process, name)
        for name in _PROCESS_FIELDS
        if name not in settings.model_fields_set
    }
    return settings.model_copy(update=update)


@pytest.fixture
def settings() -> ServeSettings:
    """Settings that ignore the environment's bundle path."""
    return ServeSettings(bundle_path=None, max_k=20, default_k=5)


@pytest.fixture
def client(engine: Engine, settings: ServeSettings) -> Iterator[TestClient]:
    """A client of a fresh app serving the tiny bundle."""
    with TestClient(create_app(in_test_process(settings), engine=engine)) as test_client:
        yield test_client


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build clients of fresh apps: `make_client(settings, engine=..., **client_kwargs)`."""
    clients: list[TestClient] = []

    def make(
        settings: ServeSettings | None = None, *, engine: Engine | None = None, **kwargs: object
    ) -> TestClient:
        app = create_app(in_test_process(settings), engine=engine)
        test_client = TestClient(app, **kwargs)  # type: ignore[arg-type]
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)
