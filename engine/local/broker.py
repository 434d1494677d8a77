"""Where a local stack gets its Kafka broker from.

The tests, the benchmarks and the demo need a real broker, not a mock: the behaviour they
rely on (keyed partitioning, consumer groups, transactions) lives in the broker. Where that
broker comes from depends on the machine, so it is pluggable behind `BrokerProvider`:

* `ExternalBroker`: a broker someone else runs, named by ``KAFKA_BOOTSTRAP``.
* `LocalJarBroker`: the default. Starts Apache Kafka (KRaft, one node) from the jars that
  ``deploy/local/kafka.sh fetch`` puts in the cache, on free ports and in a temporary data
  dir, so it never clashes with the broker of ``make kafka-up``.
* `TestcontainersBroker`: ``KAFKA_PROVIDER=testcontainers``, for machines with Docker.

`provider_from_env` picks one of them; `running_broker` holds one for a ``with`` block.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .base import BrokerError, BrokerProvider
from .jar_broker import LocalJarBroker

# Confluent Platform 7.9 ships Apache Kafka 3.9, the version deploy/local/kafka/pom.xml pins.
DEFAULT_TESTCONTAINERS_IMAGE = "confluentinc/cp-kafka:7.9.0"


class ExternalBroker:
    """A broker that is already running elsewhere (``KAFKA_BOOTSTRAP``); we neither start
    nor stop it, so a developer can point the tests at a long-lived broker and skip the
    start-up cost, or CI can bring its own."""

    def __init__(self, bootstrap: str | None = None) -> None:
        value = bootstrap if bootstrap is not None else os.environ.get("KAFKA_BOOTSTRAP", "")
        if not value:
            raise BrokerError("ExternalBroker needs KAFKA_BOOTSTRAP (host:port[,host:port...])")
        self._bootstrap = value

    def start(self) -> str:
        return self._bootstrap

    def stop(self) -> None:
        return None


class TestcontainersBroker:
    """Kafka in a Docker container through testcontainers, for machines that have Docker
    and prefer it to the jar cache. testcontainers is imported only here: it is the lock's
    opt-in ``testcontainers`` group, which ``make setup-testcontainers`` installs."""

    __test__ = False  # A class named Test* that pytest must not try to collect.

    def __init__(self, image: str | None = None) -> None:
        self._image = image or os.environ.get("KAFKA_IMAGE", DEFAULT_TESTCONTAINERS_IMAGE)
        self._container: Any = None

    def start(self) -> str:
        if self._container is not None:
            return str(self._container.get_bootstrap_server())
        try:
            # testcontainers.kafka, the older name, warns since 4.15 (the lock's version).
            module = importlib.import_module("testcontainers.community.kafka")
            docker_error = importlib.import_module("docker.errors").DockerException
        except ImportError as exc:
            raise BrokerError(
                "KAFKA_PROVIDER=testcontainers needs the testcontainers package (not part of "
                "make setup: install it, as locked, with `make setup-testcontainers`) and a "
                "Docker engine; unset KAFKA_PROVIDER to use the local jar broker instead"
            ) from exc
        try:
            container = module.KafkaContainer(self._image).with_kraft()
            # The same broker-wide behaviour as deploy/local/kafka.sh.
            for key, value in {
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
                "KAFKA_NUM_PARTITIONS": "4",
                "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            }.items():
                container = container.with_env(key, value)
            container.start()
        except docker_error as exc:
            raise BrokerError(
                f"KAFKA_PROVIDER=testcontainers: Docker could not run {self._image}: {exc}; "
                "unset KAFKA_PROVIDER to use the local jar broker instead"
            ) from exc
        self._container = container
        return str(container.get_bootstrap_server())

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.stop()


def provider_from_env(environ: Mapping[str, str] | None = None) -> BrokerProvider:
    """``KAFKA_BOOTSTRAP`` set: that broker. ``KAFKA_PROVIDER=testcontainers``: Docker.
    Otherwise (or ``KAFKA_PROVIDER=local``): a broker from the jar cache."""
    env = os.environ if environ is None else environ
    bootstrap = env.get("KAFKA_BOOTSTRAP", "").strip()
    if bootstrap:
        return ExternalBroker(bootstrap)
    choice = env.get("KAFKA_PROVIDER", "").strip().lower()
    if choice == "testcontainers":
        return TestcontainersBroker(env.get("KAFKA_IMAGE") or None)
    if choice in ("", "local", "jar"):
        return LocalJarBroker()
    raise BrokerError(
        f"KAFKA_PROVIDER={choice!r} is not known: use 'local' (default) or 'testcontainers', "
        "or set KAFKA_BOOTSTRAP to use a running broker"
    )


@contextmanager
def running_broker(provider: BrokerProvider | None = None) -> Iterator[str]:
    """The bootstrap servers of ``provider`` (default: `provider_from_env`) for as long as
    the block runs; a broker it started is stopped on the way out, whatever happens."""
    provider = provider_from_env() if provider is None else provider
    try:
        yield provider.start()
    finally:
        provider.stop()


def is_external(provider: BrokerProvider) -> bool:
    """Whether the broker is someone else's: what runs on it must clean up after itself."""
    return isinstance(provider, ExternalBroker)
