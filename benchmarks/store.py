"""How fast is the event store? Appends in batches, retried batches, read_all, verify.

Events from a seeded rating run of the example catalog (``rating-engine generate`` through
the in-process pipeline), appended with their inputs as the sink does, to SQLite (a file,
``synchronous=FULL``) and PostgreSQL (``POSTGRES_URL``, else a private server from Debian's
binaries with fsync on). The appends are timed again on a fresh store with the sink's
wallet snapshots taken as it goes (``engine/stream/store_snapshots.py``, every
``--snapshot-every`` events, in their own process as the sink takes them). Usage:
``python benchmarks/store.py [--events N] [--batch N] [--snapshot-every N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import publish, table
from support.postgres import fresh_schema, server

from engine.catalog import load_catalog
from engine.codec import Rejected, decode_cdr
from engine.domain import Cdr, Command, Event
from engine.offline.generate import generate_cdrs
from engine.offline.pipeline import Pipeline
from engine.store import open_store
from engine.stream.metrics import SinkMetrics
from engine.stream.store_snapshots import StoreSnapshots

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"

Batch = tuple[list[Event], list[tuple[str, Cdr | Command]]]


def batches(events: int, size: int, sims: int, seed: int) -> list[Batch]:
    """Decisions of a rating run, grouped into sink batches of about ``size`` events."""
    catalog = load_catalog(CATALOG)
    pipeline = Pipeline(catalog)
    out: list[Batch] = []
    current: Batch = ([], [])
    total = 0
    for line in generate_cdrs(catalog, sims, events, seed, faults=0.0):
        cdr = decode_cdr(line)
        if isinstance(cdr, Rejected):
            continue
        decided = pipeline.feed(cdr)
        if isinstance(decided, Rejected) or not decided:
            continue
        current[0].extend(decided)
        current[1].extend((w, cdr) for w in sorted({e.wallet_id for e in decided}))
        total += len(decided)
        if len(current[0]) >= size:
            out.append(current)
            current = ([], [])
        if total >= events:
            break
    if current[0]:
        out.append(current)
    return out


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as directory:
        yield f"sqlite:///{directory}/events.db"


@contextmanager
def postgres_url() -> Iterator[str]:
    with server(durable=True) as url, fresh_schema(url) as schema_url:
        yield schema_url


def with_snapshots(url: str, work: list[Batch], every: int) -> dict[str, float]:
    """Appends as the sink makes them, its store snapshots taken meanwhile: the appends'
    rate, and the snapshots written (the last round waited for, outside the timing)."""
    n = sum(len(events) for events, _ in work)
    store = open_store(url)
    try:
        snapshots = StoreSnapshots(store, every, SinkMetrics(), url)
        t0 = time.perf_counter()
        for events, inputs in work:
            stored = store.append(events, inputs)
            snapshots.appended({e.wallet_id for e in events}, stored)
        t_append = time.perf_counter() - t0
        snapshots.close()
        assert store.position() == n and snapshots.failures == 0
    finally:
        store.close()
    return {
        "append_with_snapshots_events_per_s": n / t_append,
        "snapshot_rounds": snapshots.rounds,
        "snapshots_written": snapshots.written,
    }


def measure(url: str, work: list[Batch], read_batch: int) -> dict[str, float]:
    n = sum(len(events) for events, _ in work)
    store = open_store(url)
    try:

        def timed(run: Callable[[], Any]) -> float:
            t0 = time.perf_counter()
            run()
            return time.perf_counter() - t0

        t_append = timed(lambda: [store.append(e, i) for e, i in work])
        t_retry = timed(lambda: [store.append(e, i) for e, i in work])
        t_read = timed(lambda: sum(len(c) for c in store.read_all(batch=read_batch)))
        t_verify = timed(store.verify)
        assert store.position() == n and store.verify() == []
    finally:
        store.close()
    return {
        "append_events_per_s": n / t_append,
        "retried_events_per_s": n / t_retry,
        "read_all_events_per_s": n / t_read,
        "verify_events_per_s": n / t_verify,
        "commits_per_s": len(work) / t_append,
    }


def label(name: str) -> str:
    words = name.removesuffix("_per_s").replace("_", " ")
    return f"{words} /s" if name.endswith("_per_s") else words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per append")
    parser.add_argument("--read-batch", type=int, default=10_000)
    parser.add_argument("--sims", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--snapshot-every", type=int, default=20_000, help="events between snapshot rounds"
    )
    args = parser.parse_args()

    work = batches(args.events, args.batch, args.sims, args.seed)
    n = sum(len(events) for events, _ in work)
    results: dict[str, dict[str, float]] = {}
    for backend, make_url in (("sqlite", sqlite_url), ("postgres", postgres_url)):
        with make_url() as url:
            results[backend] = measure(url, work, args.read_batch)
        with make_url() as url:
            results[backend] |= with_snapshots(url, work, args.snapshot_every)

    rows = [
        (f"{backend} {label(name)}", f"{value:,.0f}")
        for backend, figures in results.items()
        for name, value in figures.items()
    ]
    title = f"store: {n:,} events in {len(work):,} appends of ~{args.batch:,}, one writer"
    print(table(rows, title))
    publish(
        "store",
        {
            "events": n,
            "appends": len(work),
            "batch": args.batch,
            "read_batch": args.read_batch,
            "snapshot_every": args.snapshot_every,
            "results": {b: {k: round(v) for k, v in f.items()} for b, f in results.items()},
        },
    )


if __name__ == "__main__":
    main()
