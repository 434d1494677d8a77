"""Fixtures for tests that need a real Kafka broker.

The broker comes from `engine.testing.kafka_broker.provider_from_env`: ``KAFKA_BOOTSTRAP``
to use a running one, ``KAFKA_PROVIDER=testcontainers`` for Docker, otherwise a private
single-node broker from the Maven jar cache, started once per session.
"""

from collections.abc import Iterator

import pytest

from engine.testing.kafka_broker import provider_from_env


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a broker that lives for the whole test session."""
    provider = provider_from_env()
    try:
        yield provider.start()
    finally:
        provider.stop()
