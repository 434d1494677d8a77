"""The worker on a real broker: stream equals offline, rejected records, SIGKILL and restart."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
import yaml

from engine.cli import main
from engine.local import Process, free_ports

from .harness import (
    CATALOG,
    REPO,
    Stack,
    events_by_wallet,
    offline_events_by_wallet,
    read_topic,
    samples,
    snapshot_committed,
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


POOLER = ["89441000000000990001", "89441000000000990002"]
"""The SIMs of the wallet ``pooler`` (``_with_pooler``): the first from September 1st, the
second from the 20th, both in a flexible pool of 5 MB per SIM at 1.00 EUR per MB."""

POOLER_CDRS = [
    # 5 MB pooled, 6 MB (6.00 EUR) of overage on 2.00: -4.00, past the 3.00 overdraft limit
    {"cdr_id": "pool-1", "started_at": "2026-09-05T10:00:00Z", "volume": 11 * 1024**2},
    # from the 20th the pool has 10 MB: this one is pooled
    {"cdr_id": "pool-2", "started_at": "2026-09-22T10:00:00Z", "volume": 1024**2, "sim": 1},
]

LATER = [
    # repays the 4.00 owed first, then resumes: 4.00 left, 2 × 0.50 of restart fees
    {
        "type": "TopUp",
        "command_id": "t-pooler",
        "wallet_id": "pooler",
        "at": "2026-09-25T00:00:00Z",
        "amount": "8.00",
        "currency": "EUR",
    },
    # September closes: 10 MB of allowance, 6 used, so 4 MB of the overage (4.00) come back
    {
        "type": "Tick",
        "command_id": "tick-pooler-oct",
        "wallet_id": "pooler",
        "at": "2026-10-01T00:00:00Z",
    },
]
"""Commands sent once every CDR is decided, dated after the pooler's CDRs (offline sorts by
time)."""


def _with_pooler(tmp_path: Path) -> Path:
    """The example catalog and one more wallet, ``pooler``: debt past its overdraft, a resume
    with per-SIM restart fees, and a flexible pool that trues up at its cycle's close. Its
    SIMs are catalog SIMs, as the stream routes CDRs by the catalog's subscriptions."""
    data = yaml.safe_load(CATALOG.read_text())
    data["plans"].append(
        {
            "id": "pooler-data",
            "name": "Pooled data",
            "versions": [
                {
                    "version": 1,
                    "effective_from": "2026-06-01T00:00:00Z",
                    "currency": "EUR",
                    "rates": {"data": {"EU": {"price": "1.00", "per": "MB"}}},
                    "restart_fee": "0.50",
                    "splits": {
                        "usage": {"telco-a": 60, "platform": 30, "reseller": 10},
                        "mrc": {"platform": 100},
                    },
                }
            ],
        }
    )
    data["pools"].append(
        {
            "id": "pooler-flex",
            "wallet": "pooler",
            "kind": "flexible",
            "zones": ["EU"],
            "per_sim": "5MB",
        }
    )
    data["wallets"].append(
        {
            "id": "pooler",
            "name": "Pooler",
            "currency": "EUR",
            "overdraft_limit": "3.00",
            "suspend_at": "-3.00",
            "resume_at": "1.00",
            "opening_balance": [{"kind": "top_up", "amount": "2.00"}],
        }
    )
    for iccid, since in zip(POOLER, ("2026-09-01T00:00:00Z", "2026-09-20T00:00:00Z"), strict=True):
        data["subscriptions"].append(
            {
                "iccid": iccid,
                "wallet": "pooler",
                "plan": "pooler-data",
                "pool": "pooler-flex",
                "active_from": since,
            }
        )
    path = tmp_path / "catalog-pooler.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _pooler_cdrs() -> bytes:
    out = b""
    for c in POOLER_CDRS:
        record = {
            "cdr_id": c["cdr_id"],
            "iccid": POOLER[int(c.get("sim", 0))],
            "service": "data",
            "started_at": c["started_at"],
            "volume": c["volume"],
            "mcc": "262",
            "mnc": "01",
            "source": "pooler",
        }
        out += msgspec.json.encode(record) + b"\n"
    return out


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


def _offline(
    tmp_path: Path, cdrs: Path, commands: Path, catalog: Path = CATALOG
) -> tuple[Path, Path]:
    events, rejected = tmp_path / "offline-events.jsonl", tmp_path / "offline-rejected.jsonl"
    args = ["rate", "--catalog", str(catalog), "--input", str(cdrs), "--commands", str(commands)]
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
    cdrs, first = _dataset(tmp_path, 3000, seed=11)
    cdrs.write_bytes(cdrs.read_bytes() + _pooler_cdrs())
    later = tmp_path / "later.jsonl"
    later.write_bytes(b"".join(msgspec.json.encode(c) + b"\n" for c in LATER))
    commands = tmp_path / "all-commands.jsonl"
    commands.write_bytes(first.read_bytes() + later.read_bytes())
    stack.catalog = _with_pooler(tmp_path)
    offline_events, offline_rejected = _offline(tmp_path, cdrs, commands, stack.catalog)
    expected = offline_events_by_wallet(offline_events)
    total = sum(len(v) for v in expected.values())
    later_keys = {f"cmd:{c['command_id']}" for c in LATER}
    after = sum(1 for v in expected.values() for e in v if _input_key(e) in later_keys)
    pooler = [msgspec.json.decode(e) for e in expected["pooler"]]
    kinds = [e["type"] for e in pooler]
    # what the pooler's run is here to show, offline first: debt past the overdraft, a top-up
    # repaying it and resuming with restart fees, a true-up at the cycle's close
    assert min(e.get("balance", 0) for e in pooler if e["type"] == "WalletSuspended") < -3_000_000
    assert any(e["type"] == "GrantAdded" and e.get("debt_repaid") == 4_000_000 for e in pooler)
    assert kinds.count("WalletResumed") == 1
    assert [e["ref"] for e in pooler if e.get("kind") == "restart_fee"] == POOLER
    closed = [e for e in pooler if e["type"] == "PoolCycleClosed"]
    assert [(c["cycle"], c["credit"]["amount"]) for c in closed] == [("2026-09-01", 4_000_000)]

    port = free_ports(1)[0]
    # Snapshots too large for Kafka are skipped (and counted), never fatal: make them all so,
    # and due at every batch after a partition's first (the commands' batch comes first), so
    # one is tried however fast the machine decides.
    stack.env["RATING_SNAPSHOT_MAX_BYTES"] = "1000"
    stack.start_worker("--metrics-port", str(port), "--snapshot-every", "0.001")
    _publish_commands_first(stack, first)
    stack.cli("publish", "--input", str(cdrs), "--no-progress")
    _wait_for_events(stack, total - after)
    stack.cli("command", "--input", str(later))
    streamed = _wait_for_events(stack, total)

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

    # The worker's /metrics count exactly what was sent and what happened (read once the
    # rejections are all out: one whose SIM no route covers is held a while first).
    metrics = samples(port)
    events = [msgspec.json.decode(x) for x in offline_events.read_bytes().splitlines()]
    by_type = Counter(e["type"] for e in events)
    reasons = Counter(e["reason"] for e in events if e["type"] == "CdrRejected")
    reasons.update(r["reason"] for r in offline)
    lines = [x for x in cdrs.read_bytes().splitlines() if x.strip()]
    assert metrics[("rating_cdrs_received_total", ())] == len(lines)
    assert metrics[("rating_cdrs_rated_total", ())] == by_type["UsageRated"]
    assert metrics[("rating_commands_received_total", ())] == len(TOP_UPS) + len(LATER)
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


def _input_key(event: bytes) -> str:
    return str(msgspec.json.decode(event)["id"]).rpartition("#")[0]


def _snapshots_written(worker: Process) -> float:
    scrape = worker.scrape()
    return scrape.get("rating_snapshots_total") if scrape else 0.0


def _kill_and_restart_when(stack: Stack, ready: Callable[[Process], bool], *args: str) -> None:
    """SIGKILL the running worker once ``ready`` holds for it, then start another."""
    worker = stack.current
    assert worker is not None
    worker.wait_until(lambda: ready(worker), timeout=120, every=0.1)
    stack.kill_worker()
    stack.start_worker(*args, metrics=True)


def test_sigkill_and_restart_loses_nothing_and_charges_nothing_twice(
    stack: Stack, tmp_path: Path
) -> None:
    cdrs, commands = _dataset(tmp_path, 12000, seed=23)
    offline_events, _ = _offline(tmp_path, cdrs, commands)
    expected = offline_events_by_wallet(offline_events)
    total = sum(len(v) for v in expected.values())

    snapshots = ("--snapshot-every", "0.5")
    stack.start_worker(*snapshots, metrics=True)
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
        # Kill twice, at different points of the run. First once a snapshot is committed on
        # wallet.snapshots (one merely written may still be in an open transaction, which
        # the kill aborts), so that its successor recovers from one; then once that one has
        # written a snapshot too, or the input has ended.
        _kill_and_restart_when(stack, lambda _w: snapshot_committed(stack), *snapshots)
        ended = lambda w: _snapshots_written(w) >= 1 or publisher.poll() is not None  # noqa: E731
        _kill_and_restart_when(stack, ended, *snapshots)
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
