"""Poison records on the real broker: each is rejected with a reason and the worker goes on.

Before, every one of these, published once, made the worker exit (70 or 75) on each restart
and blocked its partition: deep JSON, an instant in the year 9999, 900 KB of random bytes
(whose rejection record was over the rejected topic's limit), a command keyed for another
wallet (which forked that wallet's history on a partition that does not own it), a routed
record whose lists do not line up.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Producer

from engine.local import free_ports
from engine.stream.routed import partition_of

from .harness import Stack, read_topic, samples

ICCID = "89441000000000900002"  # acme's, active 2026-08-01 .. 2026-09-15
CDR: dict[str, Any] = {
    "cdr_id": "ok-1",
    "iccid": ICCID,
    "service": "data",
    "started_at": "2026-09-10T14:05:00+02:00",
    "volume": 1234567,
    "mcc": "262",
    "mnc": "01",
}
TOP_UP: dict[str, Any] = {
    "type": "TopUp",
    "command_id": "tu-ok",
    "wallet_id": "acme",
    "at": "2026-09-10T10:00:00Z",
    "amount": "5.00",
    "currency": "EUR",
}
FAR = "9999-12-31T23:59:59Z"


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def _deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap, tmp_path)
    yield s
    s.stop_worker()


def _other_key(wallet: str, partitions: int) -> bytes:
    """A key whose partition is not ``wallet``'s."""
    home = partition_of(wallet.encode(), partitions)
    return next(
        key
        for key in (f"other-{n}".encode() for n in range(1000))
        if partition_of(key, partitions) != home
    )


@pytest.mark.chaos
def test_poison_records_are_rejected_and_the_partitions_go_on(stack: Stack) -> None:
    topics = stack.topics
    port = free_ports(1)[0]
    stack.start_worker("--metrics-port", str(port))
    producer = Producer(
        {
            "bootstrap.servers": stack.bootstrap,
            "message.max.bytes": 2_000_000,
            "partitioner": "murmur2_random",  # as every producer of the engine
        }
    )
    noise = random.Random(5).randbytes(900_000)
    raw = topics.cdr_raw.name
    for value in (
        _deep(2000),
        noise,
        _json({**CDR, "cdr_id": "far", "started_at": FAR}),
        _json({**CDR, "cdr_id": "nul\u0000id"}),
        _json({**CDR, "cdr_id": "huge", "volume": 1 << 70}),
        _json(CDR),
    ):
        producer.produce(raw, value, ICCID.encode())
    commands = topics.wallet_commands.name
    partitions = topics.wallet_commands.partitions
    for key, value in (
        (b"acme", _deep(2000)),
        (b"acme", _json({**TOP_UP, "type": "Tick", "command_id": "far", "at": FAR})),
        (_other_key("acme", partitions), _json({**TOP_UP, "command_id": "fork"})),
        (b"ghost", _json({**TOP_UP, "command_id": "ghost", "wallet_id": "ghost"})),
        (b"acme", _json({**TOP_UP, "command_id": "big", "amount": "1" + "0" * 30})),
        (b"acme", _json(TOP_UP)),
    ):
        producer.produce(commands, value, key)
    # Keyed right, placed wrong (librdkafka's default partitioner is not murmur2): deciding
    # it would fork acme's history on a partition that does not own acme.
    astray = (partition_of(b"acme", partitions) + 1) % partitions
    producer.produce(commands, _json({**TOP_UP, "command_id": "astray"}), b"acme", astray)
    # A routed record no enrich wrote, its lists out of line (zip(strict=True) raised).
    routed = b'[0,["acme"],[1,2],[0],[]]'
    producer.produce(topics.cdr_by_wallet.name, routed, b"acme")
    assert producer.flush(30) == 0

    expected = Counter(
        {
            "too_deep": 2,
            "too_large": 1,
            "invalid_time": 2,
            "invalid_field": 1,
            "wrong_partition": 2,
            "unknown_wallet": 1,
            "malformed": 1,
        }
    )
    records = read_topic(stack.bootstrap, topics.cdr_rejected.name, until=expected.total())
    rejected = [msgspec.json.decode(x) for x in records]
    assert Counter(r["reason"] for r in rejected) == expected
    too_large = next(r for r in rejected if r["reason"] == "too_large")
    assert too_large["raw_length"] == len(noise) and len(too_large["raw_sha256"]) == 64
    forks = [r for r in rejected if r["reason"] == "wrong_partition"]
    assert {json.loads(r["raw"])["command_id"] for r in forks} == {"fork", "astray"}
    assert {r["wallet_id"] for r in forks} == {"acme"}

    # The good inputs after the poison are decided: the partitions were never blocked.
    deadline = time.monotonic() + 90
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        decisions = read_topic(stack.bootstrap, topics.wallet_events.name, quiet=2.0, timeout=20)
        events = [e for d in decisions for e in msgspec.json.decode(d)["events"]]
        types = Counter(e["type"] for e in events)
        if types["UsageRated"] and types["GrantAdded"]:
            break
        time.sleep(0.5)
    assert stack.worker is not None and stack.worker.poll() is None, "the worker stopped"
    assert [e["cdr_id"] for e in events if e["type"] == "UsageRated"] == ["ok-1"]
    assert [e["grant"]["amount"] for e in events if e["type"] == "GrantAdded"] == [5_000_000]
    refused = {e["reason"]: e for e in events if e["type"] in ("CdrRejected", "CommandRejected")}
    assert refused["volume_over_limit"]["cdr_id"] == "huge"
    assert refused["amount_over_limit"]["command_id"] == "big"
    # One history per wallet: acme opened once, nothing at all for the unknown wallet.
    assert [e["id"] for e in events if e["type"] == "WalletOpened"] == ["open:acme#0"]
    assert not [e for e in events if e["wallet_id"] == "ghost"]

    metrics = samples(port)
    for reason, n in expected.items():
        sample = metrics[("rating_cdrs_rejected_total", (("reason", reason),))]
        assert sample == n, reason
