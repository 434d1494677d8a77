"""A worker paused past its session timeout (SIGSTOP) loses its wallet partitions; when it
resumes (SIGCONT) it must write nothing for them: no late decision, no snapshot. CDRs sent
again afterwards are then rejected (duplicate or late), never charged twice."""

from __future__ import annotations

import collections
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import KafkaError

from engine.cli import main
from engine.stream.fencing import is_fenced, transactional_id

from .harness import (
    CATALOG,
    Stack,
    all_decided,
    events_by_wallet,
    metric,
    offline_events_by_wallet,
    read_topic,
    wait_until,
)
from .test_scale_out import (
    PARTITIONS,
    Worker,
    _balances,
    _dataset,
    _publisher,
    _start_group,
    _wait_owned,
    group,
)

__all__ = ["group"]  # the fixture, shared with test_scale_out

SESSION_TIMEOUT = "6"
"""Seconds (RATING_SESSION_TIMEOUT) before the group drops a silent worker: the least a
broker accepts by default (group.min.session.timeout.ms)."""


def _wait_deciding(worker: Worker, publisher: subprocess.Popen[bytes]) -> None:
    """Until ``worker`` has decided some of the CDRs being published."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and publisher.poll() is None:
        if metric(worker.port, "rating_decisions_total") >= 100:
            return
        time.sleep(0.1)
    raise AssertionError(f"{worker.name} decided nothing while the CDRs were published")


def _pause(worker: Worker) -> None:
    assert worker.process is not None
    worker.process.send_signal(signal.SIGSTOP)


def _resume(worker: Worker) -> None:
    assert worker.process is not None
    worker.process.send_signal(signal.SIGCONT)


@pytest.mark.chaos
def test_a_worker_paused_past_its_session_charges_nothing_twice(
    group: tuple[Stack, list[Worker], Path], tmp_path: Path
) -> None:
    stack, (a, b), catalog = group
    stack.env["RATING_SESSION_TIMEOUT"] = SESSION_TIMEOUT
    cdrs, commands, offline = _dataset(tmp_path, catalog, 4_000, seed=43)

    _start_group(stack, [a, b], commands)
    publisher = _publisher(stack, cdrs, rate=1000)
    try:
        _wait_deciding(a, publisher)
        _pause(a)  # mid-stream: a holds inputs it has fetched and not yet decided or written
        try:
            _wait_owned([a, b], {"a": 0, "b": PARTITIONS})
        finally:
            assert publisher.wait(timeout=120) == 0
            # b decides what a left behind, before a wakes up.
            wait_until(lambda: all_decided(stack), "b to decide every CDR published")
            _resume(a)
        _wait_owned([a, b], None)  # a is back in the group with a share
    finally:
        if publisher.poll() is None:
            publisher.kill()
    # The operator sends the whole file again: every CDR was charged already.
    assert _publisher(stack, cdrs, rate=3000).wait(timeout=120) == 0

    expected = offline_events_by_wallet(offline)
    rated = {e["cdr_id"]: e for e in _of_type(expected, "UsageRated")}
    streamed = _streamed(stack, len(rated))
    charges = collections.Counter(e["cdr_id"] for e in _of_type(streamed, "UsageRated"))
    twice = {cdr: n for cdr, n in charges.items() if n > 1}
    assert not twice, f"{len(twice)} CDRs charged more than once"
    # Each charge is the offline run's, to the micro-unit: nothing was rated on stale state.
    assert {e["cdr_id"]: e for e in _of_type(streamed, "UsageRated")} == rated
    # The second copy of every charged CDR was rejected (a duplicate, or late).
    resent = {
        e["cdr_id"]
        for e in _of_type(streamed, "CdrRejected")
        if e["reason"] in ("duplicate", "late")
    }
    assert set(rated) <= resent, f"{len(set(rated) - resent)} re-sent CDRs not rejected"
    assert _balances(streamed) == _balances(expected)
    # b took every partition over while a was paused (a's fenced, if it had a batch open),
    # and a, fenced or not, is still running: no crash, no restart.
    assert b.logs().count("recovered from") >= PARTITIONS
    assert a.process is not None and a.process.poll() is None and a.starts == 1


def _of_type(events: dict[str, list[bytes]], kind: str) -> list[dict[str, Any]]:
    decoded = (msgspec.json.decode(raw) for items in events.values() for raw in items)
    return [e for e in decoded if e["type"] == kind]


def _streamed(stack: Stack, rated: int) -> dict[str, list[bytes]]:
    """The committed events of wallet.events, once the re-sent CDRs have been answered."""
    deadline = time.monotonic() + 180
    while True:
        decisions = read_topic(stack.bootstrap, stack.topics.wallet_events.name, quiet=2.0)
        events = events_by_wallet(decisions)
        rejected = _of_type(events, "CdrRejected")
        if len(rejected) >= rated or time.monotonic() > deadline:
            return events
        time.sleep(1.0)


def test_split_billing_charges_reach_the_payer_once_through_the_transactions(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A routed charge is written to wallet.commands in the deciding partition's transaction;
    the worker reads wallet.commands read_committed, and passes over the transaction markers
    left there (counted, not read back): each charge is applied once.

    The CDRs go in two halves, the second once the first's charges are applied, so that a
    payer's partition holds a marker with a later transaction's charges after it."""
    stack = Stack(kafka_bootstrap, tmp_path, raw_partitions=1, wallet_partitions=4)
    raw = tmp_path / "raw.jsonl"
    args = ["generate", "--catalog", str(CATALOG), "--sims", "600", "--cdrs", "2000"]
    assert main([*args, "--seed", "7", "--out", str(raw)]) == 0
    lines = raw.read_bytes().splitlines(keepends=True)
    halves = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    halves[0].write_bytes(b"".join(lines[: len(lines) // 2]))
    halves[1].write_bytes(b"".join(lines[len(lines) // 2 :]))
    worker = stack.start_worker("--snapshot-every", "0.5", metrics=True)
    try:
        counts = []
        for half in halves:
            stack.cli("publish", "--input", str(half), "--no-progress")
            routed, applied = _routed_and_applied(stack, after=counts[-1] if counts else 0)
            counts.append(len(routed))
        scrape = worker.scrape()
    finally:
        stack.stop_worker()
    assert 0 < counts[0] < counts[1], "each half must have split-billing CDRs"
    assert set(applied) == {(payer, cdr) for cdr, payer in routed.items()}
    assert set(applied.values()) == {1}
    assert scrape is not None and scrape.get("rating_inputs_passed_over_total") > 0


def _routed_and_applied(
    stack: Stack, after: int
) -> tuple[dict[str, str], collections.Counter[tuple[str, str]]]:
    """The split-billing CDRs decided so far (CDR id: payer), once more than ``after``, and
    the ``ApplyCharge`` decisions of the payers, once there is one for each (or two minutes
    have passed)."""
    deadline = time.monotonic() + 120
    while True:
        decisions = [
            msgspec.json.decode(r)
            for r in read_topic(stack.bootstrap, stack.topics.wallet_events.name, quiet=2.0)
        ]
        routed = {
            e["cdr_id"]: e["payer"]
            for d in decisions
            for e in d["events"]
            if e["type"] == "UsageRated" and e["payer"] != e["wallet_id"] and e["amount"]
        }
        applied = collections.Counter(
            (d["wallet_id"], d["command"]["cdr_id"])
            for d in decisions
            if d.get("command") and d["command"]["type"] == "ApplyCharge"
        )
        if len(routed) > after and len(applied) >= len(routed):
            return routed, applied
        if time.monotonic() > deadline:
            return routed, applied
        time.sleep(1.0)


# -- without a broker: the ids that fence, and the errors that mean fenced ---------------


def test_each_wallet_partition_has_a_transactional_id_of_its_own() -> None:
    """The id a new owner takes over (and so fences the old one with) is the app's and the
    partition's: the same for every worker of the group, different per partition."""
    ids = {transactional_id("rating-engine", p) for p in range(8)}
    assert len(ids) == 8
    assert transactional_id("rating-engine", 3) == transactional_id("rating-engine", 3)
    assert transactional_id("other-app", 3) not in ids


def test_a_fenced_producer_is_recognised_by_its_error() -> None:
    assert is_fenced(KafkaError(KafkaError._FENCED))
    assert is_fenced(KafkaError(KafkaError.PRODUCER_FENCED))
    assert not is_fenced(KafkaError(KafkaError._TIMED_OUT))
    # any fatal error: the producer can never commit again
    assert is_fenced(KafkaError(KafkaError._TIMED_OUT, fatal=True))
