"""What every broker provider shares: its error, its protocol, and how to tell that a
broker really answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from confluent_kafka.admin import AdminClient


class BrokerError(RuntimeError):
    """A broker could not be provided; the message says why and what to do."""


class BrokerProvider(Protocol):
    """Something that can hand out a running broker and take it away again."""

    def start(self) -> str:
        """Make a broker available and return its bootstrap servers (``host:port,...``)."""
        ...

    def stop(self) -> None:
        """Release whatever `start` acquired. Safe to call more than once."""
        ...


def broker_answers(
    bootstrap: str, timeout: float = 2.0, config: Mapping[str, Any] | None = None
) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request and lists itself.

    A TCP connect is not enough: the socket opens before the broker has caught up with
    the KRaft metadata log, and requests sent then fail.
    """
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            # Connection-refused lines while the broker boots are expected noise.
            "log_level": 0,
            "socket.timeout.ms": max(int(timeout * 1000), 10),
            **(config or {}),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # confluent_kafka raises KafkaException for every transport failure.
        return False
    return bool(metadata.brokers)


def wait_until_answers(
    bootstrap: str,
    timeout: float,
    still_alive: Callable[[], bool] = lambda: True,
    interval: float = 0.25,
    config: Mapping[str, Any] | None = None,
) -> bool:
    """Poll `broker_answers` until it says yes (True), the deadline passes or the
    process behind the broker dies (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not still_alive():
            return False
        wait = min(2.0, max(deadline - time.monotonic(), 0.1))
        if broker_answers(bootstrap, timeout=wait, config=config):
            return True
        time.sleep(interval)
    return False


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    All sockets stay bound until every port is known, so the kernel cannot hand out the
    same port twice; another process can still take one before the broker binds it, which
    `LocalJarBroker.start` handles by retrying.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
