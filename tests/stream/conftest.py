"""Fixtures for tests that need a broker of their own (the session's, ``kafka_bootstrap``,
is in tests/conftest.py)."""

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from engine.local import LocalJarBroker, running_broker


@pytest.fixture
def topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh topic of one partition on the session's broker, named for the test's module,
    deleted afterwards (test_broker.py has a topic of three partitions of its own)."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    name = f"{module}-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name], operation_timeout=30)[name].result(timeout=30)


@pytest.fixture(scope="module")
def outage_broker() -> Iterator[LocalJarBroker]:
    """A broker of the module's own, which its tests halt and resume without disturbing
    the session's broker."""
    broker = LocalJarBroker()
    with running_broker(broker):
        yield broker
