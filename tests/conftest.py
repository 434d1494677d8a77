"""Fixtures shared across test folders."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from support.postgres import server
from support.topics import fresh_topics as _fresh_topics

from engine.local import provider_from_env, running_broker
from engine.stream.topics import Topics

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
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker that lives for the whole test session, for
    every folder that needs one (the stream, the CLI). It comes from
    `engine.local.provider_from_env`: ``KAFKA_BOOTSTRAP`` to use a running one,
    ``KAFKA_PROVIDER=testcontainers`` for Docker, otherwise a private single-node broker from
    the Maven jar cache, started once per session."""
    with running_broker(provider_from_env()) as bootstrap:
        yield bootstrap


@pytest.fixture
def fresh_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> Iterator[Topics]:
    """Every topic of topics.yaml on the session's broker, under names of this test's own."""
    yield from _fresh_topics(tmp_path, monkeypatch, kafka_bootstrap)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one embedded ClickHouse directory: chDB holds one per process, so every
    test that projects uses a database of its own in this one."""
    return tmp_path_factory.mktemp("chdb") / "data"
