"""Fixtures for tests that need a real Kafka broker.

The broker comes from `engine.local.provider_from_env`: ``KAFKA_BOOTSTRAP`` to use a running
one, ``KAFKA_PROVIDER=testcontainers`` for Docker, otherwise a private single-node broker
from the Maven jar cache, started once per session.
"""

from collections.abc import Iterator

import pytest

from engine.local import LocalJarBroker, provider_from_env, running_broker


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a broker that lives for the whole test session."""
    with running_broker(provider_from_env()) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def outage_broker() -> Iterator[LocalJarBroker]:
    """A broker of the module's own, which its tests halt and resume without disturbing
    the session's broker."""
    broker = LocalJarBroker()
    with running_broker(broker):
        yield broker
