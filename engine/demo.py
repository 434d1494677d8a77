"""``rating-engine demo``: the whole system on one machine, started, fed, read and stopped.

A Kafka broker from the Maven-fetched jars (or ``KAFKA_BOOTSTRAP``), the topics, one worker,
one sink writing the event store (SQLite) and the ClickHouse projections (chDB), a
generated CDR stream published with a progress bar; then a summary read from ClickHouse.
Everything lives under one folder that each run starts afresh, so a second run works too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO

from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm

from .catalog import load_catalog
from .codec import Rejected
from .domain import format_money
from .offline.generate import generate_cdrs, generate_commands, write_lines
from .offline.inputs import read_commands
from .projections import connect
from .projections.query import Answer, render_table, run_query
from .store import open_store
from .stream.admin import apply_topics
from .stream.publisher import publish_cdrs, publish_commands
from .stream.publisher import render as render_publish
from .stream.topics import StreamError, load_topics
from .testing.kafka_broker import BrokerError, ExternalBroker, free_ports, provider_from_env
from .testing.worker import worker_argv

POLL = 0.5
SETTLED = 3.0
"""Seconds with nothing new anywhere before the run counts as fully rated."""


class DemoError(StreamError):
    """A part of the demo failed; the message says which and shows its log."""


@dataclass(frozen=True)
class DemoSettings:
    catalog: Path
    out: Path
    sims: int = 5000
    cdrs: int = 100_000
    seed: int = 7
    days: int = 31
    timeout: float = 1800.0


@dataclass
class Scrape:
    """The numbers the demo waits on, summed over label sets."""

    values: dict[str, float]

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)


def scrape(port: int) -> Scrape | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return Scrape(values)


class Process:
    """A child process of the demo with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._handle: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._handle, stderr=subprocess.STDOUT)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise DemoError(
                f"the {self.name} exited with code {self.proc.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        self._handle.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._handle.close()


def say(step: str) -> None:
    print(f"\n== {step}", flush=True)


@contextmanager
def broker() -> Iterator[str]:
    """The broker the tests would use: ``KAFKA_BOOTSTRAP``, else one from the jar cache."""
    provider = provider_from_env()
    try:
        bootstrap = provider.start()
    except BrokerError as exc:
        raise DemoError(f"no Kafka broker: {exc}") from None
    ours = not isinstance(provider, ExternalBroker)
    print(f"Kafka broker on {bootstrap}" + ("" if ours else " (KAFKA_BOOTSTRAP)"))
    try:
        yield bootstrap
    finally:
        if ours:
            say("Stopping the Kafka broker")
        provider.stop()


def wait_until_rated(
    worker: Process,
    sink: Process,
    ports: tuple[int, int],
    published: int,
    timeout: float,
    on_progress: Callable[[int], None],
) -> tuple[Scrape, Scrape]:
    """Until the worker has read every CDR and the sink has stored and projected every
    decision the worker wrote, and nothing has moved for ``SETTLED`` seconds."""
    deadline = time.monotonic() + timeout
    last: tuple[float, ...] = ()
    quiet_since = time.monotonic()
    while True:
        worker.check()
        sink.check()
        w, s = scrape(ports[0]), scrape(ports[1])
        if w is not None and s is not None:
            received = int(w.get("rating_cdrs_received_total"))
            on_progress(received)
            now = (
                w.get("rating_decisions_total"),
                s.get("rating_sink_records_total"),
                s.get("rating_projection_position"),
            )
            if now != last:
                last, quiet_since = now, time.monotonic()
            caught_up = (
                received >= published
                and now[0] == now[1]
                and s.get("rating_store_position") == now[2]
                and s.get("rating_sink_lag") == 0
            )
            if caught_up and time.monotonic() - quiet_since >= SETTLED:
                return w, s
        if time.monotonic() > deadline:
            raise DemoError(
                f"not everything was rated within {timeout:g}s\n"
                f"worker:\n{worker.tail()}\nsink:\n{sink.tail()}"
            )
        time.sleep(POLL)


SUMMARY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Top wallets by spend",
        "SELECT wallet, debited AS spent, credited, expired, balance, uncollected "
        "FROM wallet_balances ORDER BY debited DESC LIMIT 5",
        ("spent", "credited", "expired", "balance", "uncollected"),
    ),
    (
        "Pools, fullest first (volume in the pool's unit: bytes, messages, seconds)",
        "SELECT pool_id, wallet, bucket, used, allowance, remaining FROM pool_status "
        "ORDER BY used / greatest(allowance, 1) DESC LIMIT 8",
        (),
    ),
    (
        "Revenue by provider",
        "SELECT provider, kind, sum(amount) AS amount FROM revenue_by_provider "
        "GROUP BY provider, kind ORDER BY provider, kind",
        ("amount",),
    ),
    (
        "Suspensions",
        "SELECT wallet, status, suspensions, resumes, since FROM wallet_status ORDER BY wallet",
        (),
    ),
)
"""Each part of the closing summary: title, SQL against the projections, money columns."""


def summary(clickhouse_url: str) -> str:
    client = connect(clickhouse_url)
    parts = []
    for title, sql, money in SUMMARY:
        answer = run_query(client, sql)
        columns = answer.columns
        rows = [
            tuple(
                Decimal(format_money(v)) if name in money and isinstance(v, int) else v
                for name, v in zip(columns, row, strict=True)
            )
            for row in answer.rows
        ]
        parts.append(f"{title}\n{render_table(Answer(columns, rows))}")
    return "\n\n".join(parts)


def check_store(store_url: str) -> str:
    """The event store's hash chains, walked end to end."""
    store = open_store(store_url)
    try:
        problems = store.verify()
        stats = store.stats()
    finally:
        store.close()
    if problems:
        raise DemoError(f"the event store does not verify: {problems[:5]}")
    return (
        f"event store: {stats.events:,} events in {stats.streams:,} streams, hash chains "
        f"intact; {stats.inputs:,} inputs kept for replay"
    )


def run_demo(settings: DemoSettings) -> int:
    out = settings.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    catalog = load_catalog(settings.catalog)
    topics = load_topics()
    store_url = f"sqlite:///{(out / 'events.db').resolve()}"
    clickhouse_url = f"chdb:///{(out / 'clickhouse').resolve()}"

    say(f"Generating {settings.cdrs:,} CDRs from {settings.sims:,} SIMs over {settings.days} days")
    cdrs, commands = out / "cdrs.jsonl", out / "commands.jsonl"
    gen = generate_cdrs(catalog, settings.sims, settings.cdrs, settings.seed, settings.days)
    n_cdrs = write_lines(cdrs, gen)
    n_commands = write_lines(commands, generate_commands(catalog, settings.seed, settings.days))
    print(f"{n_cdrs:,} CDRs in {cdrs}, {n_commands:,} commands in {commands}")

    with ExitStack() as stack:
        say("Starting Kafka")
        bootstrap = stack.enter_context(broker())
        report = apply_topics(topics, bootstrap)
        if not report.ok:
            raise DemoError(f"the topics could not be applied: {report}")
        print(f"topics from {topics.source}: {len(report.topics)} ready")

        say("Starting the worker and the sink")
        env = {**os.environ, "KAFKA_BOOTSTRAP": bootstrap}
        worker_port, sink_port = free_ports(2)
        ports = (worker_port, sink_port)
        worker = Process(
            "worker",
            worker_argv(
                settings.catalog, out / "worker", "warning", "--metrics-port", str(ports[0])
            ),
            env,
            out / "worker.log",
        )
        stack.callback(worker.stop)
        sink = Process(
            "sink",
            [
                sys.executable,
                "-m",
                "engine.cli",
                "sink",
                "--store",
                store_url,
                "--clickhouse",
                clickhouse_url,
                "--catalog",
                str(settings.catalog),
                "--metrics-port",
                str(ports[1]),
            ],
            env,
            out / "sink.log",
        )
        stack.callback(sink.stop)
        print(f"worker metrics: http://127.0.0.1:{ports[0]}/metrics  (log {worker.log})")
        print(f"sink metrics:   http://127.0.0.1:{ports[1]}/metrics  (log {sink.log})")

        say("Publishing")
        parsed = [c for c in read_commands(commands) if not isinstance(c, Rejected)]
        publish_commands(parsed, topics.wallet_commands, bootstrap, str(commands))
        result = publish_cdrs(cdrs, topics.cdr_raw, bootstrap, progress=True)
        print(render_publish(result))
        if result.failed:
            raise DemoError(f"{result.failed:,} CDRs could not be published")

        say("Rating (waiting until every decision is stored and projected)")
        total = result.delivered
        bar = tqdm(total=total, unit=" CDRs", file=sys.stderr)
        started = time.monotonic()

        def progress(received: int) -> None:
            bar.update(max(0, min(received, total) - bar.n))

        with bar:
            w, s = wait_until_rated(
                worker, sink, ports, result.delivered, settings.timeout, progress
            )
        seconds = time.monotonic() - started
        rejected_topic = topics.cdr_rejected.name
        print(
            f"{int(w.get('rating_cdrs_rated_total')):,} CDRs rated, "
            f"{int(w.get('rating_cdrs_rejected_total')):,} rejected (on {rejected_topic}), "
            f"{int(s.get('rating_store_position')):,} events stored in {seconds:.1f}s"
        )
        say("Stopping the worker and the sink")
        sink.stop()
        worker.stop()

    say("Checks")
    print(check_store(store_url))
    say("Summary (read from ClickHouse)")
    print(summary(clickhouse_url))
    print(
        f"\nEverything is in {out}: event store {store_url}, projections {clickhouse_url}.\n"
        f"Try: rating-engine query --clickhouse {clickhouse_url} "
        '"SELECT * FROM wallet_balances"'
    )
    return 0
