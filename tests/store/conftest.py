"""Every store test runs against both backends: a SQLite file and a PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.store import EventStore, open_store

from .helpers import BACKENDS, Rated, fresh_url


@pytest.fixture(scope="session")
def rated() -> Rated:
    return Rated(cdrs=400, seed=5)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    backend: str = request.param
    postgres_url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    with fresh_url(backend, postgres_url) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    s = open_store(store_url)
    yield s
    s.close()
