"""Apps over the tiny bundle of `tests/unit/conftest.py`."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings, create_app

with warnings.catch_warnings():
    # starlette 1.x asks for `httpx2` and warns once on import when it finds httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.fixture
def settings() -> ServeSettings:
    """Settings that ignore the environment's bundle path."""
    return ServeSettings(bundle_path=None, max_k=20, default_k=5)


@pytest.fixture
def client(engine: Engine, settings: ServeSettings) -> Iterator[TestClient]:
    """A client of a fresh app serving the tiny bundle."""
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build clients of fresh apps: `make_client(settings, engine=..., **client_kwargs)`."""
    clients: list[TestClient] = []

    def make(
        settings: ServeSettings | None = None, *, engine: Engine | None = None, **kwargs: object
    ) -> TestClient:
        test_client = TestClient(create_app(settings, engine=engine), **kwargs)  # type: ignore[arg-type]
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)
