"""How fast does replay settle a store, offline and through the wallets' owners? CDRs/s.

Seeded CDRs over the example catalog with each wallet split in ``--wallet-copies`` (default
4: sixteen wallets over all eight wallet partitions, so that two jobs and two workers each
get a share) are rated into a SQLite store (untimed). Then the store is replayed with a
catalog whose iot-eu v1 SMS and APAC data prices and iot-global revenue shares differ
(benchmarks/replay.py's change):

- offline, ``replay(..., jobs=J)`` on a fresh copy of the store, J = 1 and 2: re-rating,
  deciding the adjustments and appending them (best of ``--repeat`` runs, with the CPU time
  of all its processes);
- in a streaming deployment, on a real broker (``KAFKA_BOOTSTRAP``, else a private one):
  fresh topics, W workers in one group (W = 1, then 2) that first rate the same CDRs live;
  then ``rating-engine replay --mode stream --jobs 2`` on a fresh copy of the store. Timed
  from the start of that command until the owners decided every ``AdjustRating`` (the last
  decision's CreateTime on ``wallet.events``).

CDRs/s = CDRs compared / elapsed. Usage:
``python benchmarks/replay_stream.py [--cdrs N] [--sims N] [--wallet-copies K] [--jobs J]``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import yaml
from _common import environment, input_decoder, logger, save, table
from confluent_kafka import TopicPartition
from replay import CHANGES
from stream import Stack, _consumer, broker, external, write_cdrs
from support.catalogs import spread_catalog

from engine.catalog import load_catalog
from engine.local import run_command
from engine.offline.replay import ReplayReport, replay
from engine.offline.run import rate_all
from engine.store import open_store

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "examples" / "catalog.yaml"
TIMEOUT = 600.0
"""Seconds a stage may take before the run is declared stuck."""


log = logger("replay_stream")


class Decisions(threading.Thread):
    """Counts the decisions on ``wallet.events`` after ``starts`` (per partition): of CDRs
    and of replay adjustments (``cmd:adj:``), with the latest CreateTime (ms) of each."""

    def __init__(self, bootstrap: str, topic: str, starts: dict[int, int]) -> None:
        super().__init__(name="decisions", daemon=True)
        self.consumer = _consumer(bootstrap)
        self.consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        self.cdrs = self.adjustments = 0
        self.last_adjustment_ms = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                for msg in self.consumer.consume(10_000, timeout=0.2):
                    value = msg.value()
                    if msg.error() is not None or value is None:
                        continue
                    key = input_decoder.decode(value).input
                    if key.startswith("cdr:"):
                        self.cdrs += 1
                    elif key.startswith("cmd:adj:"):
                        self.adjustments += 1
                        self.last_adjustment_ms = max(self.last_adjustment_ms, msg.timestamp()[1])
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()

    def wait(self, what: str, count: int, stack: Stack) -> None:
        deadline = time.monotonic() + TIMEOUT
        while getattr(self, what) < count:
            if self.error is not None:
                raise RuntimeError(f"reading wallet.events failed: {self.error!r}")
            stack.check_worker()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {getattr(self, what):,} of {count:,} decided")
            time.sleep(0.05)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)


def catalogs(root: Path, copies: int) -> tuple[Path, Path]:
    """The spread catalog, and the same with the changed prices and shares."""
    old = spread_catalog(root / "catalog.yaml", copies)
    text = CATALOG.read_text()
    for before, after in CHANGES:
        text = text.replace(before, after, 1)
    changed = yaml.safe_load(text)
    data = yaml.safe_load(old.read_text())
    data.update(
        {k: v for k, v in changed.items() if k not in ("wallets", "pools", "subscriptions")}
    )
    new = root / "new.yaml"
    new.write_text(yaml.safe_dump(data, sort_keys=False))
    return old, new


def offline(
    rated: Path, new: Path, jobs: int, root: Path, repeat: int
) -> tuple[float, float, ReplayReport]:
    """(best elapsed seconds of ``repeat`` runs, each on a fresh copy; CPU seconds of that
    run, its jobs' processes included; report)"""
    best: tuple[float, float, ReplayReport] | None = None
    for i in range(repeat):
        path = root / f"offline-{jobs}-{i}.db"
        shutil.copy(rated, path)
        url = f"sqlite:///{path}"
        store = open_store(url)
        try:
            cpu0 = _cpu()
            t0 = time.perf_counter()
            report = replay(store, load_catalog(new), jobs=jobs, opener=partial(open_store, url))
            elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
        finally:
            store.close()
            path.unlink()
        if best is None or elapsed < best[0]:
            best = (elapsed, cpu, report)
    assert best is not None
    return best


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def streamed(
    bootstrap: str, args: argparse.Namespace, paths: dict[str, Path], workers: int
) -> tuple[float, float, ReplayReport, dict[str, float]]:
    """(seconds until the owners decided every adjustment, seconds the command ran, report,
    CPU seconds of the command and its jobs, and of the workers, meanwhile)"""
    root = paths["root"]
    stack = Stack(bootstrap, root, f"workers-{workers}", catalog=paths["old"])
    try:
        topics = stack.topics
        events = topics.wallet_events
        reader = Decisions(bootstrap, events.name, {p: 0 for p in range(events.partitions)})
        reader.start()
        stack.start_workers(workers)
        stack.wait_shared(events.partitions)
        stack.publish(paths["cdrs"])
        reader.wait("cdrs", args.rated, stack)
        log(f"{workers} worker(s) rated {reader.cdrs:,} CDRs live")
        store = root / f"stream-{workers}.db"
        shutil.copy(paths["rated"], store)
        argv = ["replay", "--store", f"sqlite:///{store}", "--catalog", str(paths["new"])]
        argv += ["--mode", "stream", "--jobs", str(args.jobs), "--json"]
        workers_cpu, cpu0 = stack.worker_cpu() or 0.0, _cpu()
        t0 = time.time()
        out = run_command(
            [sys.executable, "-m", "engine.cli", *argv],
            "rating-engine replay",
            error=RuntimeError,
            env=stack.env,
            cwd=REPO,
            timeout=TIMEOUT,
        )
        ran, command_cpu = time.time() - t0, _cpu() - cpu0
        report = msgspec.json.decode(out, type=ReplayReport)
        reader.wait("adjustments", report.published, stack)
        reader.stop()
        cpu = {"command": command_cpu, "workers": (stack.worker_cpu() or 0.0) - workers_cpu}
        log(f"CPU seconds: replay command {cpu['command']:.1f}, workers {cpu['workers']:.1f}")
        return reader.last_adjustment_ms / 1000 - t0, ran, report, cpu
    finally:
        stack.close(delete_topics=external())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdrs", type=int, default=100_000)
    parser.add_argument("--sims", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--wallet-copies", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2, help="replay jobs in the stream runs")
    parser.add_argument("--repeat", type=int, default=3, help="offline runs; the best counts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old, new = catalogs(root, args.wallet_copies)
        cdrs = root / "cdrs.jsonl"
        write_cdrs(cdrs, args.cdrs, args.sims, args.seed, old)
        store = open_store(f"sqlite:///{root / 'rated.db'}")
        summary = rate_all(load_catalog(old), cdrs, None, store=store)
        stats, wallets = store.stats(), len(store.wallets())
        store.close()
        args.rated = summary.rated
        paths = {"root": root, "old": old, "new": new, "cdrs": cdrs, "rated": root / "rated.db"}
        results: dict[str, tuple[float, ReplayReport]] = {}
        cpu: dict[str, float] = {}
        for jobs in (1, 2):
            name = f"offline, {jobs} job{'s' if jobs > 1 else ''}"
            elapsed, cpu[name], done = offline(paths["rated"], new, jobs, root, args.repeat)
            results[name] = (elapsed, done)
            log(f"{name}: {elapsed:.1f} s, {cpu[name]:.1f} s of CPU")
        ran: dict[str, float] = {}
        stream_cpu: dict[str, dict[str, float]] = {}
        with broker() as bootstrap:
            for workers in (1, 2):
                name = f"stream, {workers} worker{'s' if workers > 1 else ''}"
                elapsed, ran[name], done, stream_cpu[name] = streamed(
                    bootstrap, args, paths, workers
                )
                results[name] = (elapsed, done)
                log(f"{name}: {elapsed:.1f} s")
    show(args, stats.events, wallets, results, ran, cpu, stream_cpu)


def show(
    args: argparse.Namespace,
    events: int,
    wallets: int,
    results: dict[str, tuple[float, ReplayReport]],
    ran: dict[str, float],
    cpu: dict[str, float],
    stream_cpu: dict[str, dict[str, float]],
) -> None:
    compared = {name: r.rerated for name, (_, r) in results.items()}
    assert len(set(compared.values())) == 1, compared  # every run compared the same CDRs
    changed = {name: (r.changed, r.commands) for name, (_, r) in results.items()}
    assert len(set(changed.values())) == 1, changed
    n = next(iter(compared.values()))
    rows: list[tuple[str, str]] = [
        ("CDRs compared / changed", f"{n:,} / {next(iter(changed.values()))[0]:,}"),
        ("events stored / wallets", f"{events:,} / {wallets}"),
    ]
    for name, (elapsed, _) in results.items():
        extra = ""
        if name in ran:
            c = stream_cpu[name]
            extra = (
                f" (command ran {ran[name]:.1f} s; CPU: command {c['command'] / n * 1e6:.0f}"
                f" µs per CDR, workers {c['workers'] / n * 1e6:.0f})"
            )
        if name in cpu:
            extra = f" ({cpu[name] / n * 1e6:.0f} µs of CPU per CDR)"
        rows.append((f"{name}, CDRs/s", f"{n / elapsed:,.0f} in {elapsed:.1f} s{extra}"))
    env = environment()
    print(
        table(
            rows, f"replay, offline and through the owners ({env['cpu']}, Python {env['python']})"
        )
    )
    print(f"(stream runs: replay --mode stream --jobs {args.jobs}; aim 100,000 CDRs/s)")
    data: dict[str, Any] = {
        "environment": env,
        "cdrs": n,
        "events": events,
        "wallets": wallets,
        "stream_replay_jobs": args.jobs,
        "seconds": {name: elapsed for name, (elapsed, _) in results.items()},
        "command_seconds": ran,
        "offline_cpu_seconds": cpu,
        "stream_cpu_seconds": stream_cpu,
        "offline_repeat": args.repeat,
        "cdrs_per_second": {name: n / elapsed for name, (elapsed, _) in results.items()},
        "aim_cdrs_per_second": 100_000,
    }
    print(f"wrote {save('replay_stream', data)}")


if __name__ == "__main__":
    main()
