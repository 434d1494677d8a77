"""The worker on a real broker: stream equals offline, rejected records, SIGKILL and restart."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from engine.cli import main
from engine.testing.kafka_broker import free_ports

from .harness import (
    CATALOG,
    REPO,
    Stack,
    events_by_wallet,
    offline_events_by_wallet,
    read_topic,
    scrape,
    snapshot_committed,
    wait_until,
)

TOP_UPS = [
    {
        "type": "TopUp",
        "command_id": "t-globex",
        "wallet_id": "globex",
        "at": "2026-08-31T00:00:00Z",
        "amount": "250.00",
        "currency": "EUR",
    },
    {
        "type": "TopUp",
        "command_id": "t-initech",
        "wallet_id": "initech",
        "at": "2026-08-31T00:00:00Z",
        "amount": "15.00",
        "currency": "EUR",
    },
    {
        "type": "RedeemVoucher",
        "command_id": "v-umbrella",
        "wallet_id": "umbrella",
        "at": "2026-08-31T06:00:00Z",
        "code": "UMBRELLA-HARVEST",
    },
]


def _dataset(tmp_path: Path, cdrs: int, seed: int) -> tuple[Path, Path]:
    """Generated CDRs (with every kind of bad record) and commands that precede them all.

    Split billing is left out: the payer's debit travels through Kafka as a separate command,
    so its place among the payer's other inputs is not the offline one.
    """
    raw = tmp_path / "raw.jsonl"
    args = ["generate", "--catalog", str(CATALOG), "--sims", "600", "--cdrs", str(cdrs)]
    assert main([*args, "--seed", str(seed), "--faults", "0.03", "--out", str(raw)]) == 0
    lines = raw.read_bytes().replace(b'"apn":"partner.acme"', b'"apn":"iot.telco"')
    cdr_path = tmp_path / "cdrs.jsonl"
    cdr_path.write_bytes(lines)
    commands = tmp_path / "commands.jsonl"
    commands.write_bytes(b"".join(msgspec.json.encode(c) + b"\n" for c in TOP_UPS))
    return cdr_path, commands


def _offline(tmp_path: Path, cdrs: Path, commands: Path) -> tuple[Path, Path]:
    events, rejected = tmp_path / "offline-events.jsonl", tmp_path / "offline-rejected.jsonl"
    args = ["rate", "--catalog", str(CATALOG), "--input", str(cdrs), "--commands", str(commands)]
    code = main([*args, "--events-out", str(events), "--rejected-out", str(rejected), "--json"])
    assert code == 0
    return events, rejected


def _wait_for_events(stack: Stack, expected: int, timeout: float = 120.0) -> dict[str, list[bytes]]:
    deadline = time.monotonic() + timeout
    while True:
        decisions = read_topic(
            stack.bootstrap, stack.topics.wallet_events.name, quiet=2.0, timeout=30
        )
        found = events_by_wallet(decisions)
        total = sum(len(v) for v in found.values())
        if total >= expected or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def ready(port: int) -> bool:
    """Whether the worker's /readyz says ready: it owns and has recovered its partitions."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap, tmp_path)
    yield s
    s.stop_worker()


def _publish_commands_first(stack: Stack, commands: Path) -> None:
    stack.cli("command", "--input", str(commands))
    # Wait until every command is decided, so they precede the CDRs as they do offline.
    read_topic(stack.bootstrap, stack.topics.wallet_events.name, until=len(TOP_UPS), timeout=60)


def test_stream_equals_offline(stack: Stack, tmp_path: Path) -> None:
    cdrs, commands = _dataset(tmp_path, 3000, seed=11)
    offline_events, offline_rejected = _offline(tmp_path, cdrs, commands)
    expected = offline_events_by_wallet(offline_events)
    total = sum(len(v) for v in expected.values())

    port = free_ports(1)[0]
    # Snapshots too large for Kafka are skipped (and counted), never fatal: make them all so,
    # and due at every batch after a partition's first (the commands' batch comes first), so
    # one is tried however fast the machine decides.
    stack.env["RATING_SNAPSHOT_MAX_BYTES"] = "1000"
    stack.start_worker("--metrics-port", str(port), "--snapshot-every", "0.001")
    _publish_commands_first(stack, commands)
    stack.cli("publish", "--input", str(cdrs), "--no-progress")
    streamed = _wait_for_events(stack, total)
    metrics = scrape(port)

    assert {w: len(v) for w, v in streamed.items()} == {w: len(v) for w, v in expected.items()}
    for wallet in expected:
        assert streamed[wallet] == expected[wallet], f"events of {wallet} differ"

    # What could not be routed is on cdr.rejected with its original bytes and reason.
    offline = [msgspec.json.decode(x) for x in offline_rejected.read_bytes().splitlines()]
    records = read_topic(stack.bootstrap, stack.topics.cdr_rejected.name, until=len(offline))
    streamed_rejected = [msgspec.json.decode(x) for x in records]
    # Offline, an unknown SIM is known by its CDR id (the line is in the file at `origin`).
    key = lambda r: (r["reason"], r.get("cdr_id") or r.get("raw") or r.get("raw_base64"))  # noqa: E731
    assert Counter(map(key, streamed_rejected)) == Counter(map(key, offline))
    assert all(r["origin"].startswith(stack.topics.cdr_raw.name + "/") for r in streamed_rejected)
    assert {r["reason"] for r in offline} >= {"malformed", "missing_field", "unknown_sim"}

    # The worker's /metrics count exactly what was sent and what happened.
    events = [msgspec.json.decode(x) for x in offline_events.read_bytes().splitlines()]
    by_type = Counter(e["type"] for e in events)
    reasons = Counter(e["reason"] for e in events if e["type"] == "CdrRejected")
    reasons.update(r["reason"] for r in offline)
    lines = [x for x in cdrs.read_bytes().splitlines() if x.strip()]
    assert metrics[("rating_cdrs_received_total", ())] == len(lines)
    assert metrics[("rating_cdrs_rated_total", ())] == by_type["UsageRated"]
    assert metrics[("rating_commands_received_total", ())] == len(TOP_UPS)
    for reason, n in reasons.items():
        assert metrics[("rating_cdrs_rejected_total", (("reason", reason),))] == n, reason
    for kind, n in by_type.items():
        assert metrics[("rating_events_total", (("type", kind),))] == n, kind
    assert metrics[("rating_partitions_owned", ())] == stack.topics.wallet_events.partitions
    assert metrics[("rating_ingest_latency_seconds_count", ())] == len(lines) - len(offline)
    assert metrics[("rating_snapshots_skipped_total", ())] > 0

    # SIGUSR1 writes the worker's state to its log, and the worker goes on.
    assert stack.worker is not None
    stack.worker.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while "state on SIGUSR1" not in stack.logs() and time.monotonic() < deadline:
        time.sleep(0.2)
    state = stack.logs().partition("state on SIGUSR1")[2]
    assert f"{stack.topics.cdr_raw.name}/0: position=" in state
    assert "task " in state and "unacked messages=0" in state
    assert stack.worker.poll() is None


def test_sigkill_and_restart_loses_nothing_and_charges_nothing_twice(
    stack: Stack, tmp_path: Path
) -> None:
    cdrs, commands = _dataset(tmp_path, 12000, seed=23)
    offline_events, _ = _offline(tmp_path, cdrs, commands)
    expected = offline_events_by_wallet(offline_events)
    total = sum(len(v) for v in expected.values())

    port = free_ports(1)[0]
    snapshots = ("--snapshot-every", "0.5", "--metrics-port", str(port))
    stack.start_worker(*snapshots)
    _publish_commands_first(stack, commands)
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "publish",
            "--input",
            str(cdrs),
            "--rate",
            "2500",
            "--no-progress",
        ],
        env=stack.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Kill twice while CDRs keep arriving: once the first worker has committed a
        # snapshot (so the next recovers from it), then once its successor is ready again.
        wait_until(lambda: snapshot_committed(stack), "a committed snapshot")
        stack.kill_worker()
        stack.start_worker(*snapshots)
        wait_until(lambda: ready(port), "the restarted worker to be ready")
        stack.kill_worker()
        stack.start_worker(*snapshots)
    finally:
        assert publisher.wait(timeout=120) == 0
    streamed = _wait_for_events(stack, total)

    assert stack.starts == 3
    assert {w: len(v) for w, v in streamed.items()} == {w: len(v) for w, v in expected.items()}
    for wallet in expected:
        assert streamed[wallet] == expected[wallet], f"events of {wallet} differ after SIGKILL"
    ids = [msgspec.json.decode(e)["id"] for v in streamed.values() for e in v]
    assert len(ids) == len(set(ids)), "an event was written twice"
    # The restarts really happened mid-run: they rebuilt state from decisions already written,
    # and the input kept arriving after them.
    logs = stack.logs()
    recovered = [int(n) for n in re.findall(r"recovered from .*? and (\d+) decisions", logs)]
    assert sum(recovered) < total
    # ... from a snapshot on wallet.snapshots plus the decisions written after it.
    assert "recovered from a snapshot" in logs
