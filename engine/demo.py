"""``rating-engine demo``: the whole system on one machine, started, fed, read and stopped.

A Kafka broker from the Maven-fetched jars (or ``KAFKA_BOOTSTRAP``), the topics, one worker,
one sink writing the event store (SQLite) and the ClickHouse projections (chDB), a
generated CDR stream published with a progress bar; then a summary read from ClickHouse.
Everything lives under one folder that each run starts afresh, so a second run works too.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tqdm import tqdm

from .catalog import load_catalog
from .codec import Rejected
from .domain import Catalog, format_money
from .local import BrokerError, LocalStack, Process, Scrape, is_external, provider_from_env
from .offline.generate import generate_cdrs, generate_commands, write_lines
from .offline.inputs import read_commands
from .projections.clickhouse import connect
from .projections.query import Answer, render_table, run_query
from .store import open_store
from .stream.publisher import PublishResult, publish_cdrs, publish_commands
from .stream.publisher import render as render_publish
from .stream.topics import StreamError

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
    ours = not is_external(provider)
    print(f"Kafka broker on {bootstrap}" + ("" if ours else " (KAFKA_BOOTSTRAP)"))
    try:
        yield bootstrap
    finally:
        if ours:
            say("Stopping the Kafka broker")
        provider.stop()


def finished(w: Scrape) -> int:
    """CDRs the worker is done with: rated, rejected (by enrich or by the wallet's owner) or
    recognised as already decided. Each CDR it reads ends in exactly one of these, so the
    sum never falls short; a rejected or redelivered command counts too, so it may run a
    little ahead (the demo's commands are valid and delivered once)."""
    return int(
        w.get("rating_cdrs_rated_total")
        + w.get("rating_cdrs_rejected_total")
        + w.get("rating_redeliveries_skipped_total")
    )


def caught_up(w: Scrape, s: Scrape, published: int) -> bool:
    """Whether the worker has read and finished every CDR, holds none back, and the sink
    has stored and projected every decision the worker wrote.

    Finished is counted apart from the decisions: the worker reads a CDR in enrich and
    decides it in the wallet's agent, a hop through Kafka later. Between the two every
    count of decisions agrees with the sink's, all of them still 0.
    """
    received = w.get("rating_cdrs_received_total")
    return (
        received >= published
        and finished(w) >= received
        and w.get("rating_cdrs_held") == 0
        and w.get("rating_decisions_total") == s.get("rating_sink_records_total")
        and s.get("rating_store_position") == s.get("rating_projection_position")
        and s.get("rating_sink_lag") == 0
    )


def wait_until_rated(
    worker: Process,
    sink: Process,
    published: int,
    timeout: float,
    on_progress: Callable[[int], None],
) -> tuple[Scrape, Scrape]:
    """Until `caught_up`, the worker is ready and nothing has moved for ``SETTLED`` seconds.

    The worker must be ready: while its wallet partitions are still being assigned or
    recovered it has read CDRs it has not yet decided. ``on_progress`` is told the CDRs
    finished so far.
    """
    deadline = time.monotonic() + timeout
    last: tuple[float, ...] = ()
    quiet_since = time.monotonic()
    while True:
        worker.check()
        sink.check()
        w, s = worker.scrape(), sink.scrape()
        if w is not None and s is not None:
            on_progress(finished(w))
            now = (
                w.get("rating_cdrs_received_total"),
                float(finished(w)),
                w.get("rating_decisions_total"),
                s.get("rating_sink_records_total"),
                s.get("rating_projection_position"),
            )
            if now != last:
                last, quiet_since = now, time.monotonic()
            done = caught_up(w, s, published) and worker.get("/readyz")[0] == 200
            if done and time.monotonic() - quiet_since >= SETTLED:
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


def fresh_folder(out: Path) -> Path:
    """``out``, emptied: each run starts afresh, so a second run works too."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def generate(settings: DemoSettings, catalog: Catalog, out: Path) -> tuple[Path, Path]:
    """The CDR and command files the run publishes."""
    say(f"Generating {settings.cdrs:,} CDRs from {settings.sims:,} SIMs over {settings.days} days")
    cdrs, commands = out / "cdrs.jsonl", out / "commands.jsonl"
    gen = generate_cdrs(catalog, settings.sims, settings.cdrs, settings.seed, settings.days)
    n_cdrs = write_lines(cdrs, gen)
    n_commands = write_lines(commands, generate_commands(catalog, settings.seed, settings.days))
    print(f"{n_cdrs:,} CDRs in {cdrs}, {n_commands:,} commands in {commands}")
    return cdrs, commands


def open_stack(bootstrap: str, out: Path) -> LocalStack:
    stack = LocalStack(bootstrap, out)
    print(f"topics from {stack.topics.source}: {len(stack.report.topics)} ready")
    return stack


def start_processes(
    stack: LocalStack, settings: DemoSettings, store_url: str, clickhouse_url: str
) -> tuple[Process, Process]:
    """One worker and one sink, each serving its metrics on a free port."""
    say("Starting the worker and the sink")
    worker = stack.start_worker(
        settings.catalog, settings.out / "worker", loglevel="warning", metrics=True
    )
    extra = ("--clickhouse", clickhouse_url, "--catalog", str(settings.catalog))
    sink = stack.start_sink(store_url, *extra, metrics=True)
    for process in (worker, sink):
        where = f"http://127.0.0.1:{process.port}/metrics"
        print(f"{process.name + ' metrics:':15} {where}  (log {process.log})")
    return worker, sink


def publish(stack: LocalStack, cdrs: Path, commands: Path) -> PublishResult:
    """The commands first, then the CDRs with a progress bar."""
    say("Publishing")
    parsed = [c for c in read_commands(commands) if not isinstance(c, Rejected)]
    publish_commands(parsed, stack.topics.wallet_commands, stack.bootstrap, str(commands))
    result = publish_cdrs(cdrs, stack.topics.cdr_raw, stack.bootstrap, progress=True)
    print(render_publish(result))
    if result.failed:
        raise DemoError(f"{result.failed:,} CDRs could not be published")
    return result


def rate(stack: LocalStack, worker: Process, sink: Process, total: int, timeout: float) -> None:
    """Until every CDR is rated, stored and projected, with a progress bar; then stopped."""
    say("Rating (waiting until every decision is stored and projected)")
    bar = tqdm(total=total, unit=" CDRs", file=sys.stderr)
    started = time.monotonic()

    def progress(finished_cdrs: int) -> None:
        bar.update(max(0, min(finished_cdrs, total) - bar.n))

    with bar:
        w, s = wait_until_rated(worker, sink, total, timeout, progress)
    seconds = time.monotonic() - started
    print(
        f"{int(w.get('rating_cdrs_rated_total')):,} CDRs rated, "
        f"{int(w.get('rating_cdrs_rejected_total')):,} rejected "
        f"(on {stack.topics.cdr_rejected.name}), "
        f"{int(s.get('rating_store_position')):,} events stored in {seconds:.1f}s"
    )
    say("Stopping the worker and the sink")
    stack.stop()


def run_demo(settings: DemoSettings) -> int:
    out = fresh_folder(settings.out)
    catalog = load_catalog(settings.catalog)
    store_url = f"sqlite:///{(out / 'events.db').resolve()}"
    clickhouse_url = f"chdb:///{(out / 'clickhouse').resolve()}"
    cdrs, commands = generate(settings, catalog, out)

    with ExitStack() as resources:
        say("Starting Kafka")
        bootstrap = resources.enter_context(broker())
        stack = open_stack(bootstrap, out)
        resources.callback(stack.stop)  # whatever fails next, no process is left behind
        worker, sink = start_processes(stack, settings, store_url, clickhouse_url)
        result = publish(stack, cdrs, commands)
        rate(stack, worker, sink, result.delivered, settings.timeout)

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
