"""Two workers in one group: they share the wallet partitions, one is killed with SIGKILL
(the other takes its partitions over and rebuilds their state), and a rolling restart of
both; each time the events and balances equal the offline run."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from engine.cli import main
from engine.codec import decode_event
from engine.domain import evolve, initial_state
from engine.testing.catalogs import spread_catalog
from engine.testing.kafka_broker import free_ports
from engine.testing.worker import worker_argv

from .harness import (
    REPO,
    Stack,
    events_by_wallet,
    metric,
    offline_events_by_wallet,
    read_topic,
    wait_until,
)

PARTITIONS = 8
TOP_UPS = [
    {
        "type": "TopUp",
        "command_id": f"t-{wallet}",
        "wallet_id": wallet,
        "at": "2026-08-31T00:00:00Z",
        "amount": "40.00",
        "currency": "EUR",
    }
    for wallet in ("initech", "initech-1", "globex-2", "umbrella-3")
]


class Worker:
    """One worker process of the group: its own data dir and metrics port."""

    def __init__(self, stack: Stack, catalog: Path, name: str) -> None:
        self.stack, self.catalog, self.name = stack, catalog, name
        self.port = free_ports(1)[0]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.stack.tmp_path / f"{self.name}-{self.starts}.log").open("wb")
        argv = worker_argv(
            self.catalog,
            self.stack.tmp_path / f"data-{self.name}",
            "info",
            "--metrics-port",
            str(self.port),
            "--snapshot-every",
            "0.5",
        )
        self.process = subprocess.Popen(
            argv, env=self.stack.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, no commit, no leaving the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def owned(self) -> int:
        """Wallet partitions this worker owns and has recovered (0 while it cannot answer)."""
        if self.process is None or self.process.poll() is not None:
            return 0
        return int(metric(self.port, "rating_partitions_owned"))

    def logs(self) -> str:
        paths = sorted(self.stack.tmp_path.glob(f"{self.name}-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in paths)


def _wait_decided(worker: Worker, publisher: subprocess.Popen[bytes], more: int = 100) -> None:
    """Until ``worker`` has decided ``more`` inputs since this was called (decisions are
    counted once their batch is committed), or the CDRs are all published (then it has what
    it will get)."""
    before = metric(worker.port, "rating_decisions_total")
    wait_until(
        lambda: (
            metric(worker.port, "rating_decisions_total") >= before + more
            or publisher.poll() is not None
        ),
        f"{worker.name} to decide {more} more inputs",
    )


def _wait_owned(workers: list[Worker], want: dict[str, int] | None, timeout: float = 120) -> None:
    """Until the workers own all partitions between them (each at least one, or as in
    ``want``), and no partition twice."""
    deadline = time.monotonic() + timeout
    owned: dict[str, int] = {}
    while time.monotonic() < deadline:
        owned = {w.name: w.owned() for w in workers}
        total = sum(owned.values())
        if want is not None and owned == want:
            return
        if want is None and total == PARTITIONS and all(owned.values()):
            return
        time.sleep(0.5)
    raise AssertionError(f"partitions owned: {owned}, wanted {want or 'a share each'}")


@pytest.fixture
def group(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[Stack, list[Worker], Path]]:
    stack = Stack(kafka_bootstrap, tmp_path, raw_partitions=1, wallet_partitions=PARTITIONS)
    catalog = spread_catalog(tmp_path / "catalog.yaml", copies=4)
    workers = [Worker(stack, catalog, "a"), Worker(stack, catalog, "b")]
    yield stack, workers, catalog
    for w in workers:
        w.stop()


def _dataset(tmp_path: Path, catalog: Path, cdrs: int, seed: int) -> tuple[Path, Path, Path]:
    """CDRs (with bad records of every kind) and top-ups; and the offline run's events."""
    raw = tmp_path / "raw.jsonl"
    args = ["generate", "--catalog", str(catalog), "--sims", "4000", "--cdrs", str(cdrs)]
    assert main([*args, "--seed", str(seed), "--faults", "0.02", "--out", str(raw)]) == 0
    # No split billing: the payer's debit reaches it as a later command in the stream.
    lines = raw.read_bytes().replace(b'"apn":"partner.acme"', b'"apn":"iot.telco"')
    cdr_path = tmp_path / "cdrs.jsonl"
    cdr_path.write_bytes(lines)
    commands = tmp_path / "commands.jsonl"
    commands.write_bytes(b"".join(msgspec.json.encode(c) + b"\n" for c in TOP_UPS))
    events = tmp_path / "offline-events.jsonl"
    args = ["rate", "--catalog", str(catalog), "--input", str(cdr_path)]
    args += ["--commands", str(commands), "--events-out", str(events), "--json"]
    assert main(args) == 0
    return cdr_path, commands, events


def _publisher(stack: Stack, cdrs: Path, rate: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "engine.cli", "publish", "--input", str(cdrs)]
    return subprocess.Popen(
        [*argv, "--rate", str(rate), "--no-progress"],
        env=stack.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _start_group(stack: Stack, workers: list[Worker], commands: Path) -> None:
    for w in workers:
        w.start()
    _wait_owned(workers, None)
    stack.cli("command", "--input", str(commands))
    # Decided before any CDR, as offline, where commands come first at the same instant.
    read_topic(stack.bootstrap, stack.topics.wallet_events.name, until=len(TOP_UPS), timeout=60)


def _assert_equals_offline(stack: Stack, offline: Path) -> None:
    expected = offline_events_by_wallet(offline)
    total = sum(len(v) for v in expected.values())
    deadline = time.monotonic() + 180
    while True:
        decisions = read_topic(
            stack.bootstrap, stack.topics.wallet_events.name, quiet=2.0, timeout=60
        )
        streamed = events_by_wallet(decisions)
        if sum(len(v) for v in streamed.values()) >= total or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert {w: len(v) for w, v in streamed.items()} == {w: len(v) for w, v in expected.items()}
    for wallet in expected:
        assert streamed[wallet] == expected[wallet], f"events of {wallet} differ"
    ids = [msgspec.json.decode(e)["id"] for v in streamed.values() for e in v]
    assert len(ids) == len(set(ids)), "an event was written twice"
    assert _balances(streamed) == _balances(expected)


def _balances(events: dict[str, list[bytes]]) -> dict[str, tuple[int, bool]]:
    """Each wallet's balance and suspension, folded from its events with the domain's evolve."""
    out = {}
    for wallet, items in events.items():
        state = initial_state(wallet)
        for raw in items:
            state = evolve(state, decode_event(raw))
        out[wallet] = (state.balance, state.suspended)
    return out


def test_two_workers_share_the_wallets_and_one_takes_over_after_sigkill(
    group: tuple[Stack, list[Worker], Path], tmp_path: Path
) -> None:
    stack, (a, b), catalog = group
    cdrs, commands, offline = _dataset(tmp_path, catalog, 10_000, seed=31)
    _start_group(stack, [a, b], commands)
    shares = {w.name: w.owned() for w in (a, b)}
    publisher = _publisher(stack, cdrs, rate=2000)
    try:
        # Killed once it has decided part of the traffic: the survivor has state to rebuild.
        _wait_decided(b, publisher)
        b.kill()
        _wait_owned([a], {"a": PARTITIONS})
    finally:
        assert publisher.wait(timeout=120) == 0
    _assert_equals_offline(stack, offline)

    assert all(n > 0 for n in shares.values()), shares
    # The survivor rebuilt the partitions it took over from what the dead worker wrote.
    recovered = re.findall(r"partition (\d+) recovered from .*? and (\d+) decisions", a.logs())
    assert any(int(n) > 0 for _, n in recovered), recovered


def test_rolling_restart_of_both_workers(
    group: tuple[Stack, list[Worker], Path], tmp_path: Path
) -> None:
    stack, (a, b), catalog = group
    cdrs, commands, offline = _dataset(tmp_path, catalog, 10_000, seed=37)
    _start_group(stack, [a, b], commands)
    publisher = _publisher(stack, cdrs, rate=1500)
    try:
        for worker in (a, b):
            # Each restart under traffic: the group decides again before the next one.
            _wait_decided(worker, publisher)
            worker.stop()
            worker.start()
            _wait_owned([a, b], None)
    finally:
        assert publisher.wait(timeout=120) == 0
    _assert_equals_offline(stack, offline)
    assert a.starts == b.starts == 2
