"""Fixtures shared across test folders."""

from collections.abc import Iterator

import pytest

from engine.testing.postgres import server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session: ``POSTGRES_URL``, else a private one."""
    with server() as url:
        yield url
