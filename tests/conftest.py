"""Fixtures shared across test folders."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.testing.postgres import server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session: ``POSTGRES_URL``, else a private one."""
    with server() as url:
        yield url


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one embedded ClickHouse directory: chDB holds one per process, so every
    test that projects uses a database of its own in this one."""
    return tmp_path_factory.mktemp("chdb") / "data"
