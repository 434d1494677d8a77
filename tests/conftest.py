"""Fixtures shared across test folders."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from support.postgres import server

# Tests assert behaviour, never wall-clock time: Hypothesis' per-example deadline (200 ms)
# would fail a correct property on a loaded machine.
settings.register_profile("engine", deadline=None)
settings.load_profile("engine")


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
