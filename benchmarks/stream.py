"""How fast is the streaming worker? CDRs through Kafka: cdr.raw -> enrich -> rate -> wallet.events.

Worker processes (Faust: enrich, rate; one by default, ``--workers N`` in one group) on
private topics of a real broker, fed by ``rating-engine publish``. Two runs, each on fresh
topics and fresh workers:

- throughput: publish N seeded CDRs as fast as possible; end to end = N / (first CDR record
  on ``cdr.raw`` .. last of their decisions on ``wallet.events``, both Kafka CreateTime);
- latency: offer a steady rate below saturation (default half the measured throughput) for
  ~30 s; per-CDR latency = CreateTime of its decision - CreateTime of its ``cdr.raw`` record.
  When that rate is below the load the latency aim names (half of the 25,000 CDRs/s aimed
  for: ``report.HALF_LOAD``), a third run offers that load, however near saturation it is
  (``--skip-aim-latency`` leaves it out).

The example catalog's four wallets hash to only three of the eight wallet partitions. The
aim's run has the wallets spread over all partitions, so by default each example wallet is
split into four (``--wallet-copies``, ``SPREAD``): sixteen wallets over all eight, so that
each batch commits a transaction on every partition and several workers each get a share.
``--wallet-copies 1`` runs the example's own four (a separate result file). The JSON records
how many wallet partitions the wallets with SIMs hash to (``wallet_partitions``); the report
judges the aim only on a run that used them all. The broker is ``KAFKA_BOOTSTRAP`` if set,
else a private one (``LocalJarBroker``) started for the run and stopped at its end. Usage:
``python benchmarks/stream.py [--cdrs N | --quick] [--workers N] [--wallet-copies K]``;
``--profile FILE`` runs the (first) worker under cProfile.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
from _common import STALL_TIMEOUT, environment, input_decoder, logger, publish, revision, table
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from report import HALF_LOAD
from support.catalogs import spread_catalog

from engine.catalog import load_catalog
from engine.domain import Catalog
from engine.local import (
    LocalJarBroker,
    LocalStack,
    Process,
    StackError,
    free_ports,
    private_topics,
    running_broker,
    worker_argv,
)
from engine.offline.generate import generate_cdrs
from engine.stream.admin import admin_client
from engine.stream.kafka_security import client_config
from engine.stream.publisher import PRODUCER_CONFIG
from engine.stream.routed import partition_of
from engine.stream.topics import REPO_TOPICS, Topics, load_topics

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "examples" / "catalog.yaml"
SPREAD = 4
"""Copies of each example wallet by default: sixteen wallets, over all eight wallet partitions
(``support.catalogs.spread_catalog``), as the aim's run has them."""

JOIN_TIMEOUT = 180.0
"""Seconds a fresh worker may take to join its group and decide the warm-up CDR."""
SETTLE_SECONDS = 2.5
"""Seconds between the warm-up decision and the run: the workers' heartbeat freezes the
heap once they are ready, with a full collection that is start-up, not the run."""


log = logger("stream")


class _RawCdr(msgspec.Struct):
    cdr_id: str
    source: str | None = None

    @property
    def key(self) -> str:  # the decision's ``input``, as engine.domain.Cdr.key builds it
        return f"cdr:{self.source}/{self.cdr_id}" if self.source else f"cdr:{self.cdr_id}"


_raw_decoder = msgspec.json.Decoder(_RawCdr)


# -- data --------------------------------------------------------------------------------


def write_cdrs(path: Path, cdrs: int, sims: int, seed: int, catalog_path: Path = CATALOG) -> int:
    catalog = load_catalog(catalog_path)
    size = 0
    with path.open("wb") as out:
        for line in generate_cdrs(catalog, sims, cdrs, seed, faults=0.0):
            out.write(line + b"\n")
            size += len(line) + 1
    return size


def warmup_line(cdrs: Path) -> tuple[bytes, str]:
    """A copy of the file's first CDR under a fresh id, and its decision's ``input``."""
    with cdrs.open("rb") as handle:
        first = msgspec.json.decode(handle.readline())
    first["cdr_id"] = f"warmup-{uuid.uuid4().hex[:8]}"
    raw = msgspec.json.encode(first)
    return raw, _raw_decoder.decode(raw).key


# -- a private stack: topics, worker, environment ------------------------------------------


class Stack:
    """Private topics (a renamed copy of topics.yaml), the worker processes (one group),
    their environment."""

    def __init__(
        self,
        bootstrap: str,
        workdir: Path,
        name: str,
        partitions: int | None = None,
        worker_args: tuple[str, ...] = (),
        catalog: Path = CATALOG,
    ) -> None:
        self.bootstrap = bootstrap
        self.worker_args = worker_args
        self.catalog = catalog
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        prefix = f"bench-{uuid.uuid4().hex[:8]}."
        wallet = partitions
        # --partitions reshapes cdr.raw and the topics keyed by wallet, as before.
        topics_file = private_topics(self.dir, prefix, partitions, wallet, ("wallet_id",))
        self.app_id = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            self.local = LocalStack(
                bootstrap, self.dir, topics_file=topics_file, app_id=self.app_id, cwd=REPO
            )
        except StackError as exc:
            raise RuntimeError(f"cannot create the benchmark topics: {exc}") from None
        self.topics: Topics = self.local.topics
        self.env = self.local.env
        self.workers: list[Process] = []
        self.worker_log = self.dir / "worker.log"

    def start_workers(self, count: int, profile: Path | None = None) -> None:
        """``count`` workers of one group, each with its own data dir and metrics port."""
        for i, port in enumerate(free_ports(count)):
            extra = (*self.worker_args, "--metrics-port", str(port))
            argv = worker_argv(self.catalog, self.dir / f"data-{i}", "warning", *extra)
            if profile and i == 0:  # python -m cProfile -o F -m ...: the first worker only
                argv[1:1] = ["-m", "cProfile", "-o", str(profile)]
            path = self.worker_log if i == 0 else self.dir / f"worker-{i}.log"
            # A session of its own: stopped by us (SIGTERM), not by a terminal's Ctrl-C.
            worker = self.local.start("worker", argv, path, port, new_session=True)
            self.workers.append(worker)
            log(f"worker pid {worker.proc.pid} (log {path})")

    def owned(self) -> list[int]:
        """Wallet partitions each worker owns and has recovered (its /metrics)."""
        scrapes = [worker.scrape() for worker in self.workers]
        return [int(s.get("rating_partitions_owned")) if s else 0 for s in scrapes]

    def wait_shared(self, partitions: int) -> None:
        """Until the workers own every wallet partition between them, each a share."""
        deadline = time.monotonic() + JOIN_TIMEOUT
        while True:
            self.check_worker()
            owned = self.owned()
            if sum(owned) == partitions and all(owned):
                log(f"partitions owned per worker: {owned}")
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers own {owned} of {partitions} partitions")
            time.sleep(0.5)

    def gc_pauses(self) -> GcScrape:
        """The workers' ``rating_gc_pause_seconds`` buckets and longest pauses, summed."""
        return sum_gc([gc_scrape(worker.get("/metrics")[1]) for worker in self.workers])

    def check_worker(self) -> None:
        for worker in self.workers:
            if not worker.alive:
                raise RuntimeError(
                    f"a worker exited with code {worker.proc.returncode}; its log is kept in "
                    f"{self.keep_log()}:\n{self.log_tail()}"
                )

    def keep_log(self) -> Path:
        """A copy of the worker's log outside the temporary directory, for a failed run."""
        kept = Path(tempfile.gettempdir()) / f"rating-bench-stream-{self.app_id}.log"
        with contextlib.suppress(OSError):
            shutil.copyfile(self.worker_log, kept)
        return kept

    def worker_cpu(self) -> float | None:
        """CPU seconds (user + system) the workers used so far (Linux), else None."""
        total = 0.0
        for worker in self.workers:
            try:
                stat = Path(f"/proc/{worker.proc.pid}/stat").read_text()
            except OSError:
                return None
            fields = stat.rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total if self.workers else None

    def worker_threads(self) -> dict[tuple[int, int], tuple[str, float]]:
        """Each worker thread's group (`thread_group`) and CPU seconds so far (Linux; empty
        elsewhere), by (process, thread) id."""
        found: dict[tuple[int, int], tuple[str, float]] = {}
        for worker in self.workers:
            found.update(thread_cpu(worker.proc.pid))
        return found

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.worker_log.read_text(errors="replace")
        except OSError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop_workers(self) -> None:
        workers, self.workers = self.workers, []
        for worker in workers:  # all at once: the group stops rebalancing onto the last
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=120)  # a cProfile dump takes a while

    def publish(self, path: Path, rate: float | None = None) -> dict[str, Any]:
        """``rating-engine publish`` as a subprocess; its ``--json`` summary."""
        extra = ["--rate", f"{rate:g}"] if rate else []
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "publish",
                "--input",
                str(path),
                "--no-progress",
                "--json",
                *extra,
            ],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"publish exited with code {proc.returncode}:\n{err.decode()}")
        result: dict[str, Any] = msgspec.json.decode(out)
        return result

    def send_one(self, value: bytes) -> None:
        """One CDR to ``cdr.raw``, keyed by ICCID, the way ``publish`` sends it."""
        producer = Producer({**PRODUCER_CONFIG, **client_config(self.bootstrap)})
        iccid = msgspec.json.decode(value)["iccid"].encode()
        producer.produce(self.topics.cdr_raw.name, value=value, key=iccid)
        if producer.flush(30) != 0:
            raise RuntimeError("the warm-up CDR was not delivered within 30 s")

    def close(self, delete_topics: bool) -> None:
        self.stop_workers()
        if delete_topics:  # a shared broker: leave nothing behind
            names = [spec.name for spec in self.topics.all]
            names.append(f"{self.app_id}-snapshots-changelog")
            admin = admin_client(self.bootstrap)
            with contextlib.suppress(Exception):
                for future in admin.delete_topics(names).values():
                    with contextlib.suppress(Exception):
                        future.result(timeout=30)
            with contextlib.suppress(Exception):
                admin.delete_consumer_groups([self.app_id])[self.app_id].result(timeout=30)


# -- reading results ---------------------------------------------------------------------


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            **client_config(bootstrap),
            "group.id": f"bench-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )


class DecisionReader(threading.Thread):
    """Reads ``wallet.events`` from the start while a run goes on and counts the decisions
    about CDRs (``input`` ``cdr:...``), noting each one's CreateTime (ms)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, keep: bool = False) -> None:
        super().__init__(name="decision-reader", daemon=True)
        self.consumer = _consumer(bootstrap)
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )
        self.keep = keep
        self.count = 0
        self.last_ms = 0
        self.at: dict[str, int] = {}
        """input -> CreateTime of its decision (every CDR decision when ``keep``)."""
        self.watch: set[str] = set()
        """Inputs whose decision time is kept even without ``keep`` (the warm-up CDR)."""
        self.progress = time.monotonic()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                messages = self.consumer.consume(10_000, timeout=0.2)
                for msg in messages:
                    value = msg.value()
                    if msg.error() is not None or value is None:
                        continue
                    key = input_decoder.decode(value).input
                    if not key.startswith("cdr:"):
                        continue
                    ms = msg.timestamp()[1]
                    if self.keep or key in self.watch:
                        self.at[key] = ms
                        if key in self.watch:
                            continue
                    self.count += 1
                    self.last_ms = max(self.last_ms, ms)
                if messages:
                    self.progress = time.monotonic()
        except BaseException as exc:  # reported by `wait_for`
            self.error = exc
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def wait_for(self, count: int, stack: Stack, label: str) -> None:
        """Until ``count`` CDR decisions were read (the worker dying or stalling raises)."""
        shown = time.monotonic()
        while self.count < count:
            if self.error is not None:
                raise RuntimeError(f"reading wallet.events failed: {self.error!r}")
            stack.check_worker()
            now = time.monotonic()
            if now - self.progress > STALL_TIMEOUT:
                raise RuntimeError(
                    f"{label}: no decision for {STALL_TIMEOUT:g} s at {self.count:,}/{count:,} "
                    f"(worker log: {stack.keep_log()}):"
                    f"\n{stack.log_tail()}"
                )
            if now - shown >= 15:
                log(f"{label}: {self.count:,}/{count:,} decisions")
                shown = now
            time.sleep(0.1)

    def wait_warmup(self, key: str, stack: Stack) -> None:
        deadline = time.monotonic() + JOIN_TIMEOUT
        while key not in self.at:
            stack.check_worker()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the worker did not decide a warm-up CDR within {JOIN_TIMEOUT:g} s "
                    f"(worker log: {stack.keep_log()}):\n"
                    f"{stack.log_tail()}"
                )
            time.sleep(0.05)


def raw_timestamps(bootstrap: str, topic: str, partitions: int) -> dict[str, int]:
    """Every CDR of ``topic``: its decision ``input`` -> CreateTime (ms) of the record."""
    consumer = _consumer(bootstrap)
    ends: dict[int, int] = {}
    for p in range(partitions):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if high > 0:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    out: dict[str, int] = {}
    left = dict(ends)
    deadline = time.monotonic() + 300
    try:
        while left and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=0.5):
                value = msg.value()
                if msg.error() is not None or value is None:
                    continue
                out[_raw_decoder.decode(value).key] = msg.timestamp()[1]
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset + 1 >= left.get(partition, sys.maxsize):
                    del left[partition]
    finally:
        consumer.close()
    if left:
        raise RuntimeError(f"could not read {topic} to its end")
    return out


def first_timestamp(bootstrap: str, topic: str, starts: dict[int, int]) -> int:
    """The smallest CreateTime (ms) among the records at ``starts`` (partition -> offset)."""
    consumer = _consumer(bootstrap)
    consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 60
    try:
        while len(seen) < len(starts) and time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=0.5):
                partition = msg.partition() or 0
                if msg.error() is None and partition not in seen:
                    seen[partition] = msg.timestamp()[1]
                    consumer.pause([TopicPartition(topic, partition)])
    finally:
        consumer.close()
    if not seen:
        raise RuntimeError(f"no record found on {topic}")
    return min(seen.values())


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = _consumer(bootstrap)
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    rank = max(1, min(len(values), math.ceil(q / 100 * len(values))))
    return values[rank - 1]


def slowest_seconds(joined: list[tuple[int, int]], top: int = 3) -> list[list[int]]:
    """Where in the run the tail is: the ``top`` seconds (counted from the first CDR sent)
    whose CDRs waited longest, each ``[second, its max latency in ms, its CDRs]``, slowest
    first. ``joined``: each CDR's (sent, decided) instants in epoch milliseconds."""
    if not joined:
        return []
    first = min(at for at, _ in joined)
    worst: dict[int, list[int]] = {}
    for at, decided in joined:
        second = (at - first) // 1000
        row = worst.setdefault(second, [second, 0, 0])
        row[1] = max(row[1], decided - at)
        row[2] += 1
    return sorted(worst.values(), key=lambda row: -row[1])[:top]


GcScrape = dict[str, dict[str, Any]]
"""generation -> {"buckets": {le: cumulative count}, "sum": seconds, "max": seconds}."""


def gc_scrape(text: str) -> GcScrape:
    """A worker's garbage collection pauses, from its ``/metrics`` text."""
    out: GcScrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            generation = sample.labels.get("generation")
            if generation is None:
                continue
            gen = out.setdefault(generation, {"buckets": {}, "sum": 0.0, "max": 0.0})
            if sample.name == "rating_gc_pause_seconds_bucket":
                gen["buckets"][float(sample.labels["le"])] = sample.value
            elif sample.name == "rating_gc_pause_seconds_sum":
                gen["sum"] = sample.value
            elif sample.name == "rating_gc_pause_max_seconds":
                gen["max"] = sample.value
    return out


def sum_gc(scrapes: list[GcScrape]) -> GcScrape:
    out: GcScrape = {}
    for scrape in scrapes:
        for generation, gen in scrape.items():
            total = out.setdefault(generation, {"buckets": {}, "sum": 0.0, "max": 0.0})
            for le, count in gen["buckets"].items():
                total["buckets"][le] = total["buckets"].get(le, 0.0) + count
            total["sum"] += gen["sum"]
            total["max"] = max(total["max"], gen["max"])
    return out


def gc_summary(before: GcScrape, after: GcScrape, seconds: float) -> dict[str, Any]:
    """Per generation, the pauses between two scrapes: how many, their total (and its share
    of ``seconds``), the p99 (interpolated within its bucket, as Prometheus'
    ``histogram_quantile``) and the bound of the longest one's bucket, each capped by the
    longest pause since the worker started (its gauge), which is also given."""
    out: dict[str, Any] = {}
    for generation, gen in sorted(after.items()):
        old = before.get(generation, {"buckets": {}, "sum": 0.0})
        bounds = sorted(gen["buckets"])
        counts = [gen["buckets"][b] - old["buckets"].get(b, 0.0) for b in bounds]
        count = int(counts[-1]) if counts else 0
        total = gen["sum"] - old["sum"]
        longest = round(gen["max"] * 1000, 1)
        p99, top = _quantile(0.99, bounds, counts), _quantile(1.0, bounds, counts)
        out[generation] = {
            "count": count,
            "total_ms": round(total * 1000, 1),
            "share_of_run": round(total / seconds, 4) if seconds > 0 else None,
            # Upper bounds both: no pause is longer than the longest since the start.
            "p99_ms": None if p99 is None else min(p99, longest),
            "max_ms": None if top is None else min(top, longest),
            "max_since_start_ms": longest,
        }
    return out


def _quantile(q: float, bounds: list[float], cumulative: list[float]) -> float | None:
    """``histogram_quantile``: the bucket where the rank falls, linearly within it (ms)."""
    if not cumulative or cumulative[-1] <= 0:
        return None
    rank = q * cumulative[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return round(lower * 1000, 1)
            inside = count - below
            share = (rank - below) / inside if inside else 1.0
            return round((lower + (bound - lower) * share) * 1000, 1)
        lower, below = bound, count
    return None


# -- the two runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What both runs share."""

    bootstrap: str
    workdir: Path
    sims: int
    seed: int
    partitions: int | None
    worker_args: tuple[str, ...]
    workers: int = 1
    catalog: Path = CATALOG

    def stack(self, name: str) -> Stack:
        return Stack(
            self.bootstrap, self.workdir, name, self.partitions, self.worker_args, self.catalog
        )


def start(
    stack: Stack, cdrs: Path, keep: bool, workers: int, profile: Path | None = None
) -> DecisionReader:
    """Start the workers and a reader; return once they share the partitions and decided a
    warm-up CDR."""
    topics = stack.topics
    reader = DecisionReader(
        stack.bootstrap, topics.wallet_events.name, topics.wallet_events.partitions, keep
    )
    value, key = warmup_line(cdrs)
    reader.watch.add(key)
    reader.start()
    t0 = time.monotonic()
    stack.start_workers(workers, profile)
    stack.wait_shared(topics.wallet_events.partitions)
    stack.send_one(value)
    reader.wait_warmup(key, stack)
    reader.at.pop(key, None)
    log(f"workers joined and decided the warm-up CDR in {time.monotonic() - t0:.1f} s")
    # A heartbeat (1 s) after it is ready, a worker freezes its heap (engine/stream/
    # garbage.py) with one full collection: not part of the run's pauses.
    time.sleep(SETTLE_SECONDS)
    return reader


THREAD_GROUPS = ("event loop", "librdkafka", "other threads")
"""How a worker's CPU is split: its main thread (the event loop: the agents, the core,
Faust), librdkafka's threads (``rdk:*``: compressing, sending, receiving), and the other
Python threads (Faust's consumer, the commits, the directory, the snapshots' writer...)."""


def thread_group(pid: int, tid: int, name: str) -> str:
    if tid == pid:
        return THREAD_GROUPS[0]
    return THREAD_GROUPS[1] if name.startswith("rdk:") else THREAD_GROUPS[2]


def thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float]]:
    """The CPU seconds (user + system) each thread of process ``pid`` used so far, with its
    group, from ``/proc`` (empty where there is none, or the process is gone)."""
    found: dict[tuple[int, int], tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat.rpartition(")")[2].split()
        tid = int(task.name)
        seconds = (int(fields[11]) + int(fields[12])) / tick
        found[(pid, tid)] = (thread_group(pid, tid, name), seconds)
    return found


def thread_split(
    before: dict[tuple[int, int], tuple[str, float]],
    after: dict[tuple[int, int], tuple[str, float]],
    n: int,
) -> dict[str, float] | None:
    """µs of CPU per CDR by thread group between two `thread_cpu` readings; a thread that
    ended in between is left out (its CPU is in the process's figure only)."""
    if not after or n <= 0:
        return None
    split = dict.fromkeys(THREAD_GROUPS, 0.0)
    for key, (group, seconds) in after.items():
        split[group] += seconds - before.get(key, (group, 0.0))[1]
    return {group: round(seconds / n * 1e6, 1) for group, seconds in split.items()}


def throughput_run(setup: Setup, cdrs: Path, n: int, profile: Path | None) -> dict[str, Any]:
    """Publish ``n`` CDRs at once; time from the first on cdr.raw to the last decision."""
    stack = setup.stack("throughput")
    bootstrap, raw = setup.bootstrap, stack.topics.cdr_raw
    try:
        reader = start(stack, cdrs, keep=False, workers=setup.workers, profile=profile)
        try:
            starts = high_watermarks(bootstrap, raw.name, raw.partitions)  # after the warm-up
            log(f"throughput: publishing {n:,} CDRs")
            gc0 = stack.gc_pauses()
            cpu0, threads0 = stack.worker_cpu(), stack.worker_threads()
            wall0 = time.time()
            published = stack.publish(cdrs)
            log(
                f"throughput: published {published['delivered']:,} in "
                f"{published['seconds']:.1f} s; waiting for the decisions"
            )
            if published["delivered"] != n:
                raise RuntimeError(f"publish delivered {published['delivered']} of {n}")
            reader.wait_for(n, stack, "throughput")
            wall1 = time.time()
            cpu1, threads1 = stack.worker_cpu(), stack.worker_threads()
            gc1 = stack.gc_pauses()
        finally:
            reader.stop()
        ends = high_watermarks(bootstrap, raw.name, raw.partitions)
        first_ms = first_timestamp(
            bootstrap, raw.name, {p: o for p, o in starts.items() if ends[p] > o}
        )
        seconds = (reader.last_ms - first_ms) / 1000
        cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        return {
            "cdrs": n,
            "decisions": reader.count,
            "publish_seconds": round(published["seconds"], 3),
            "publish_cdrs_per_second": round(n / published["seconds"]),
            "end_to_end_seconds": round(seconds, 3),
            "cdrs_per_second": round(n / seconds),
            "wall_seconds_incl_publisher_start": round(wall1 - wall0, 3),
            "worker_cpu_seconds": None if cpu is None else round(cpu, 2),
            "worker_cpu_us_per_cdr": None if cpu is None else round(cpu / n * 1e6),
            "worker_cpu_share": None if cpu is None else round(cpu / (wall1 - wall0), 2),
            "worker_threads_us_per_cdr": thread_split(threads0, threads1, n),
            "gc_pauses": gc_summary(gc0, gc1, wall1 - wall0),
        }
    finally:
        stack.close(delete_topics=external())


def latency_run(setup: Setup, rate: float, seconds: float, name: str = "latency") -> dict[str, Any]:
    """Offer ``rate`` CDRs/s for ``seconds``; each CDR's decision time - its publish time.
    ``name``: the run's stack (its topics, workers and logs) and its lines in the log."""
    n = max(1, round(rate * seconds))
    cdrs = setup.workdir / f"{name}.jsonl"
    write_cdrs(cdrs, n, setup.sims, setup.seed, setup.catalog)
    stack = setup.stack(name)
    try:
        reader = start(stack, cdrs, keep=True, workers=setup.workers)
        try:
            log(f"{name}: offering {rate:,.0f} CDRs/s for {seconds:g} s ({n:,} CDRs)")
            gc0, wall0 = stack.gc_pauses(), time.time()
            published = stack.publish(cdrs, rate=rate)
            if published["delivered"] != n:
                raise RuntimeError(f"publish delivered {published['delivered']} of {n}")
            reader.wait_for(n, stack, name)
            pauses = gc_summary(gc0, stack.gc_pauses(), time.time() - wall0)
        finally:
            reader.stop()
        raw = stack.topics.cdr_raw
        sent = raw_timestamps(setup.bootstrap, raw.name, raw.partitions)
        joined = [(sent[key], decided) for key, decided in reader.at.items() if key in sent]
        latencies = sorted(float(decided - at) for at, decided in joined)
        if len(latencies) != n:
            raise RuntimeError(f"joined {len(latencies)} of {n} CDRs with their decisions")
        slowest = slowest_seconds(joined)
        log(f"{name}: slowest seconds of the run (s from its first CDR, max ms): {slowest}")
        return {
            "offered_cdrs_per_second": round(rate),
            "achieved_publish_cdrs_per_second": round(n / published["seconds"]),
            "cdrs": n,
            "ms": {
                "p50": percentile(latencies, 50),
                "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99),
                "max": latencies[-1],
                "mean": round(sum(latencies) / n, 1),
            },
            "gc_pauses": pauses,
            "slowest_seconds": slowest,
        }
    finally:
        stack.close(delete_topics=external())
        cdrs.unlink(missing_ok=True)


def external() -> bool:
    """Whether the broker is someone else's (then the benchmark deletes its topics)."""
    return bool(os.environ.get("KAFKA_BOOTSTRAP", "").strip())


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """``KAFKA_BOOTSTRAP``, or a private broker stopped on the way out, whatever happens."""
    if external():
        bootstrap = os.environ["KAFKA_BOOTSTRAP"].strip()
        log(f"broker: {bootstrap} (KAFKA_BOOTSTRAP)")
        yield bootstrap
        return
    with running_broker(LocalJarBroker()) as bootstrap:
        log(f"broker: private LocalJarBroker on {bootstrap}")
        yield bootstrap


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 CDRs (overrides --cdrs)")
    parser.add_argument("--sims", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--partitions", type=int, help="partitions of cdr.raw and the wallet topics (default 8)"
    )
    parser.add_argument(
        "--rate", type=float, help="CDRs/s offered in the latency run (default: 50%% of measured)"
    )
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--skip-latency", action="store_true", help="the throughput run only")
    parser.add_argument(
        "--skip-aim-latency",
        action="store_true",
        help=f"no latency run at the aim's load ({HALF_LOAD:,} CDRs/s)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=float,
        help="the worker's --snapshot-every (seconds; 0: never; default: the worker's own)",
    )
    parser.add_argument("--batch-size", type=int, help="the worker's --batch-size")
    parser.add_argument("--batch-within", type=float, help="the worker's --batch-within")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in the group (default 1)"
    )
    parser.add_argument(
        "--wallet-copies",
        type=int,
        default=SPREAD,
        help=f"split each example wallet into this many (default {SPREAD}: 16 wallets over "
        "all 8 partitions; 1: the example's 4, over 3)",
    )
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the throughput run's worker here"
    )
    args = parser.parse_args()
    n = 100_000 if args.quick else args.cdrs
    worker_args: list[str] = []
    if args.snapshot_every is not None:
        worker_args += ["--snapshot-every", f"{args.snapshot_every:g}"]
    if args.batch_size is not None:
        worker_args += ["--batch-size", str(args.batch_size)]
    if args.batch_within is not None:
        worker_args += ["--batch-within", f"{args.batch_within:g}"]
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = revision()  # the code the workers run (they import it when they start)

    workdir = Path(tempfile.mkdtemp(prefix="rating-bench-stream-"))
    latency: dict[str, Any] | None = None
    at_aim: dict[str, Any] | None = None
    try:
        catalog = CATALOG
        if args.wallet_copies > 1:
            catalog = spread_catalog(workdir / "catalog.yaml", args.wallet_copies)
        partitions = args.partitions or load_topics(REPO_TOPICS, environ={}).cdr_raw.partitions
        used = wallet_partitions(load_catalog(catalog), partitions)
        cdrs = workdir / "cdrs.jsonl"
        t0 = time.perf_counter()
        size = write_cdrs(cdrs, n, args.sims, args.seed, catalog)
        log(f"generated {n:,} CDRs ({size / n:.0f} bytes each) in {time.perf_counter() - t0:.1f} s")
        with broker() as bootstrap:
            setup = Setup(
                bootstrap,
                workdir,
                args.sims,
                args.seed,
                args.partitions,
                tuple(worker_args),
                args.workers,
                catalog,
            )
            profile = args.profile.resolve() if args.profile else None
            run = throughput_run(setup, cdrs, n, profile)
            log(f"throughput: {run['cdrs_per_second']:,} CDRs/s end to end")
            cdrs.unlink()
            if not args.skip_latency:
                rate = args.rate or run["cdrs_per_second"] * 0.5
                latency = latency_run(setup, rate, args.latency_seconds)
                if rate < HALF_LOAD and not args.skip_aim_latency:
                    at_aim = latency_run(setup, HALF_LOAD, args.latency_seconds, "aim-latency")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        ("publish only (CDRs/s)", f"{run['publish_cdrs_per_second']:,}"),
        ("end to end (CDRs/s)", f"{run['cdrs_per_second']:,}"),
        ("end to end (s)", f"{run['end_to_end_seconds']:.1f}"),
    ]
    if run["worker_cpu_seconds"] is not None:
        rows.append(("worker CPU per CDR (µs)", f"{run['worker_cpu_us_per_cdr']:,}"))
        rows.append(("worker CPU busy (cores)", f"{run['worker_cpu_share']:.2f}"))
    for group, us in (run["worker_threads_us_per_cdr"] or {}).items():
        rows.append((f"  of which {group} (µs per CDR)", f"{us:,.1f}"))
    for label, found in (("latency", latency), ("at the aim's load", at_aim)):
        if found is not None:
            ms = found["ms"]
            rows.append((f"{label}: offered (CDRs/s)", f"{found['offered_cdrs_per_second']:,}"))
            rows += [(f"{label} {k} (ms)", f"{ms[k]:,.0f}") for k in ("p50", "p90", "p99", "max")]
    rows += gc_rows("throughput", run["gc_pauses"])
    for label, found in (("latency", latency), ("at the aim's load", at_aim)):
        if found is not None:
            rows += gc_rows(label, found["gc_pauses"])
    wallets = 4 * args.wallet_copies
    title = (
        f"stream: {n:,} CDRs, {args.sims:,} SIMs, {wallets} wallets over {used} of "
        f"{partitions} partitions, "
        f"{args.workers} worker{'s' if args.workers > 1 else ''}"
    )
    if worker_args:
        title += f" ({' '.join(worker_args)})"
    print(table(rows, title))
    env = environment()
    for name in ("faust-streaming", "aiokafka", "confluent-kafka"):
        env[name] = _version(name)
    env["broker"] = "KAFKA_BOOTSTRAP" if external() else "LocalJarBroker"
    env["revision"] = started_at
    name = "stream"
    if args.wallet_copies != SPREAD:
        name += f"-{wallets}-wallets"
    if args.workers > 1:
        name += f"-{args.workers}-workers"
    publish(
        name,
        {
            "cdrs": n,
            "sims": args.sims,
            "partitions": partitions,
            "wallets": wallets,
            "wallet_partitions": {"used": used, "of": partitions},
            "workers": args.workers,
            "worker_args": worker_args,
            "throughput": run,
            "latency": latency,
            "latency_at_aim": at_aim,
        },
        env,
    )


def wallet_partitions(catalog: Catalog, partitions: int) -> int:
    """How many of the ``partitions`` wallet partitions the catalog's wallets with SIMs hash
    to: the partitions that carry the run's traffic."""
    with_sims = {sub.wallet for sub in catalog.subscriptions.values()}
    return len({partition_of(wallet.encode(), partitions) for wallet in with_sims})


def gc_rows(run: str, pauses: dict[str, Any]) -> list[tuple[str, str]]:
    """A table row per generation: count, p99 and the longest pause's bucket."""
    rows = []
    for generation, gen in pauses.items():
        p99, top = gen["p99_ms"], gen["max_ms"]
        text = f"{gen['count']:,}, total {gen['total_ms']:,.0f} ms"
        if p99 is not None:
            text += f", p99 {p99:g} ms, max <= {top:g} ms"
        rows.append((f"{run}: GC gen {generation} pauses", text))
    return rows


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("stream: interrupted; worker and broker stopped", file=sys.stderr)
        sys.exit(130)
