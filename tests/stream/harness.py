"""A local stack on the test broker, with its own topics; waits on its processes, and ways
to read results."""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from engine.local import LocalStack, Process
from engine.local import private_topics as local_topics
from engine.stream.app import RatingApp, create_app
from engine.stream.metrics import Metrics
from engine.stream.positions import Positions, Record
from engine.stream.processor import RatingProcessor
from engine.stream.rater import Rater
from engine.stream.recovery import committed_offsets, read_latest
from engine.stream.settings import WorkerSettings
from engine.stream.topics import Topics

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "examples" / "catalog.yaml"


def positions_over(committed: int, log: Sequence[int]) -> tuple[Positions, list[tuple[int, int]]]:
    """`Positions` whose partitions start at ``committed`` and whose read-backs come from
    ``log`` (the offsets that hold a record, valued ``v<offset>``), and the ranges it reads
    back, as it reads them."""
    fetched: list[tuple[int, int]] = []

    async def start(topic: str, partition: int) -> int:
        return committed

    async def fetch(topic: str, partition: int, begin: int, end: int) -> list[Record]:
        fetched.append((begin, end))
        return [
            Record(topic, partition, o, b"k", f"v{o}".encode(), 1.0, None)
            for o in log
            if begin <= o < end
        ]

    return Positions(start, fetch), fetched


PRICE_CHANGE = ('EU: {price: "0.05"}', 'EU: {price: "0.06"}')
"""The SMS price of iot-eu v1 in the EU, raised."""
SPLIT_CHANGE = (
    'usage: {telco-a: 55, platform: "33.3333", reseller: "11.6667"}',
    'usage: {telco-a: 50, platform: "38.3333", reseller: "11.6667"}',
)
"""The usage revenue split of iot-global, changed."""


def changed_catalog(tmp_path: Path, name: str, *changes: tuple[str, str]) -> Path:
    """The example catalog with each ``(before, after)`` text replaced once."""
    text = CATALOG.read_text()
    for before, after in changes:
        assert before in text
        text = text.replace(before, after, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def private_topics(tmp_path: Path, raw_partitions: int = 1, wallet_partitions: int = 4) -> Path:
    """A copy of topics.yaml with unique names, so tests never share a topic.

    One ``cdr.raw`` partition keeps each wallet's CDRs in file order end to end, which is
    what lets the stream be compared with the offline run event for event.
    """
    prefix = f"t{uuid.uuid4().hex[:8]}."
    return local_topics(tmp_path, prefix, raw_partitions, wallet_partitions)


class Stack:
    """A `LocalStack` on private topics, with one worker at a time (restartable), and the
    environment the CLI needs."""

    def __init__(self, bootstrap: str, tmp_path: Path, **topic_args: int) -> None:
        self.bootstrap = bootstrap
        self.tmp_path = tmp_path
        self.topics_file = private_topics(tmp_path, **topic_args)
        self.local = LocalStack(
            bootstrap,
            tmp_path,
            topics_file=self.topics_file,
            app_id=LocalStack.fresh_app_id(),
            cwd=REPO,
        )
        self.topics: Topics = self.local.topics
        self.env = self.local.env
        self.catalog: Path = CATALOG
        self.current: Process | None = None
        self.starts = 0

    @property
    def worker(self) -> subprocess.Popen[bytes] | None:
        return None if self.current is None else self.current.proc

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "engine.cli", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args}: exit {result.returncode}\n{result.stderr}")
        return result

    def start_worker(self, *extra: str, metrics: bool = False) -> Process:
        self.starts += 1
        self.current = self.local.start_worker(
            self.catalog,
            self.tmp_path / "data",
            *extra,
            log=self.tmp_path / f"worker-{self.starts}.log",
            metrics=metrics,
        )
        return self.current

    def kill_worker(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, no commit."""
        assert self.current is not None
        self.current.kill()
        self.current = None

    def stop_worker(self) -> int | None:
        """SIGTERM, as at a planned stop: the worker's exit code (None: none was running)."""
        if self.current is None:
            return None
        code = self.current.stop(timeout=30)
        self.current = None
        return code

    def start_sink(self, store_url: str, *extra: str) -> Process:
        """A sink on this stack's topics, serving its probes on a free port."""
        return self.local.start_sink(store_url, *extra, metrics=True)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("worker-*.log"))
        )


def in_loop(scenario: Callable[[RatingApp], Awaitable[None]], tmp_path: Path) -> None:
    """Run ``scenario`` with a fresh app (never started: nothing connects to a broker)."""

    async def run() -> None:
        settings = WorkerSettings(catalog=tmp_path / "c.yaml", data_dir=tmp_path, store="memory://")
        app = create_app(settings)
        try:
            await scenario(app)
        finally:
            # The consumer's thread made an event loop of its own, which only its start
            # and stop would have closed.
            thread = getattr(app._consumer, "_thread", None)
            if thread is not None:
                thread.thread_loop.close()

    asyncio.run(run())


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a worker's /metrics on ``port``, keyed by (name, sorted labels)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def probe(process: Process, seen: list[int]) -> None:
    """Note the process's readiness now (its ``/readyz`` status, 0 while not serving)."""
    seen.append(process.get("/readyz")[0])


def retries(process: Process, component: str) -> float:
    """``rating_retries_total`` of ``component``, summed over its reasons."""
    _status, text = process.get("/metrics")
    pattern = rf'^rating_retries_total\{{component="{component}",reason="[^"]+"\}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    process: Process,
    seen: list[int] | None = None,
    every: float = 0.2,
) -> None:
    """Poll ``condition`` (noting the process's readiness in ``seen`` meanwhile); fail if
    the process exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.alive, f"the {process.name} exited:\n{process.text()}"
        assert time.monotonic() < deadline, (
            f"timed out; {process.name} log:\n{process.text()}\n"
            f"metrics:\n{process.get('/metrics')[1]}"
        )
        if seen is not None:
            probe(process, seen)
        time.sleep(every)


def hold(seconds: float, process: Process, seen: list[int] | None = None) -> None:
    """Let an outage last ``seconds``, checking the process stays up and noting its
    readiness in ``seen``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert process.alive, f"the {process.name} exited during the outage:\n{process.text()}"
        if seen is not None:
            probe(process, seen)
        time.sleep(0.5)


def metric(port: int, name: str) -> float:
    """``name`` summed over its labels on a worker's /metrics; 0 while it cannot answer
    (starting, or gone)."""
    try:
        found = samples(port)
    except (urllib.error.URLError, OSError):
        return 0.0
    return sum(value for (sample, _), value in found.items() if sample == name)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def snapshot_committed(stack: Stack) -> bool:
    """Whether some wallet partition has a snapshot a recovery would read (committed)."""
    spec = stack.topics.wallet_snapshots
    return any(read_latest(stack.bootstrap, spec.name, p) for p in range(spec.partitions))


def all_decided(stack: Stack, commands: bool = False) -> bool:
    """Whether the group's committed offsets have reached the end of ``cdr.raw`` and
    ``cdr.by-wallet`` (and ``wallet.commands`` with ``commands``): every CDR (and command)
    published so far is decided and its output committed."""
    topics = [stack.topics.cdr_raw, stack.topics.cdr_by_wallet]
    if commands:
        topics.append(stack.topics.wallet_commands)
    tps = [(spec.name, p) for spec in topics for p in range(spec.partitions)]
    committed = committed_offsets(stack.bootstrap, stack.env["RATING_APP_ID"], tps)
    consumer = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": "ends", "log_level": 0})
    try:
        ends = {
            tp: consumer.get_watermark_offsets(TopicPartition(*tp), timeout=10)[1] for tp in tps
        }
    finally:
        consumer.close()
    return all(committed[tp] >= end for tp, end in ends.items())


def read_topic(
    bootstrap: str, topic: str, until: int | None = None, timeout: float = 90.0, quiet: float = 3.0
) -> list[bytes]:
    """Every record of ``topic``: until ``until`` records arrived, or ``quiet`` seconds pass
    without one (after at least one), or ``timeout``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            # What the workers committed: a fenced worker's transactions are aborted.
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    consumer.subscribe([topic])
    out: list[bytes] = []
    start = last = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error() is None:
                    out.append(msg.value())
                    last = time.monotonic()
            if until is not None and len(out) >= until:
                break
            if until is None and out and time.monotonic() - last > quiet:
                break
    finally:
        consumer.close()
    return out


def events_by_wallet(decisions: list[bytes]) -> dict[str, list[bytes]]:
    """Flatten decision records into each wallet's events, encoded canonically."""
    out: dict[str, list[bytes]] = collections.defaultdict(list)
    for raw in decisions:
        record = msgspec.json.decode(raw)
        for event in record["events"]:
            out[record["wallet_id"]].append(msgspec.json.encode(event, order="sorted"))
    return dict(out)


def offline_events_by_wallet(path: Path) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = collections.defaultdict(list)
    for line in path.read_bytes().splitlines():
        event = msgspec.json.decode(line)
        out[event["wallet_id"]].append(msgspec.json.encode(event, order="sorted"))
    return dict(out)


def partition_zero_rater(
    names: Topics, processor: RatingProcessor, metrics: Metrics, rejected: list[Any]
) -> Rater:
    """A rate agent with every wallet homed on partition 0, keeping what it rejects in
    ``rejected`` and failing the test on an internal error."""
    return Rater(
        names,
        processor,
        metrics,
        lambda wallet: 0,
        lambda out, rejection, key: rejected.append(rejection),
        lambda stage, exc, where, raw: pytest.fail(f"{stage} failed: {exc}"),
    )
