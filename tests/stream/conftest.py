"""Fixtures for tests that need a broker of their own (the session's, ``kafka_bootstrap``,
is in tests/conftest.py)."""

from collections.abc import Iterator

import pytest

from engine.local import LocalJarBroker, running_broker


@pytest.fixture(scope="module")
def outage_broker() -> Iterator[LocalJarBroker]:
    """A broker of the module's own, which its tests halt and resume without disturbing
    the session's broker."""
    broker = LocalJarBroker()
    with running_broker(broker):
        yield broker
