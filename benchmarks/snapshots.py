"""What does a partition's snapshot cost the worker's event loop as its wallets' dedup windows
grow? A snapshot (``engine/stream/snapshotter.py``) is written on the event loop, in the
partition's transaction, every ``--snapshot-every`` seconds.

Two wallets whose current dedup generation holds ``WINDOW`` ids each (as a busy wallet's
does, up to the dedup window), snapshotted once; then rounds of ``--added`` new ids per
wallet, each round followed by a snapshot. Per snapshot: the CPU time of `Snapshotter.write`,
the records and the bytes it produces. Measured as the worker writes it (only the id chunks
that changed since the wallet's previous record), and, in the same process on the same
states, with every chunk written again (what a snapshot wrote before chunks were kept).
Then a worker that recovered from the first snapshot, after the same round of new ids: its
first snapshot (which wrote every chunk before the layout read was carried over).
Usage: ``python benchmarks/snapshots.py [--added N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any

import msgspec
from _common import publish, table
from immutables import Map

from engine.catalog import load_catalog
from engine.domain import WalletState, initial_state
from engine.domain.catalog import Subscription
from engine.domain.keylog import KeyLog
from engine.states import encode_state, without_ids
from engine.stream import chunks, snapshots
from engine.stream.metrics import Metrics
from engine.stream.processor import PartitionState, RatingProcessor, Written
from engine.stream.settings import WorkerSettings
from engine.stream.snapshotter import Snapshotter

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"
WINDOWS = (60_000, 1_000_000)
"""Ids per wallet: about what ``stream``'s 1,000,000 CDRs leave in each of its 16 wallets,
and a busy wallet's window in production (a thousand SIMs at a thousand CDRs a day)."""
WALLETS = 2


class Counted:
    """A partition writer that counts what a snapshot produces, and keeps it."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0
        self.largest = 0
        self.kept: list[tuple[bytes, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.records += 1
        self.bytes += len(value)
        self.largest = max(self.largest, len(value))
        self.kept.append((key, value))

    def figures(self, cpu: float) -> dict[str, float]:
        return {
            "cpu_ms": cpu * 1e3,
            "records": self.records,
            "mb": self.bytes / 1e6,
            "largest_kb": self.largest / 1e3,
        }


def wallet(name: str, ids: int) -> WalletState:
    seen = KeyLog.of((f"cdr:gen/{name}-{i:09d}", 1_780_000_000 + i // 10) for i in range(ids))
    return msgspec.structs.replace(initial_state(name), seen=seen)


def owner(part: PartitionState, written: Written | None = None) -> Snapshotter:
    """The snapshotter of a worker that owns partition 0, holding ``part`` (recovered from
    a snapshot when ``written`` is given)."""
    processor = RatingProcessor(load_catalog(CATALOG))
    processor.install(0, part)
    settings = WorkerSettings(catalog=CATALOG, data_dir=Path())
    snapshotter = Snapshotter(settings, "wallet.snapshots", processor, Metrics())
    if written is not None:
        snapshotter.recovered(0, part.events_offset, written)
    return snapshotter


def grow(part: PartitionState, added: int, r: int) -> None:
    """``added`` new ids in each wallet of ``part``, as rated CDRs add them."""
    for name, state in list(part.wallets.items()):
        seen = state.seen
        for i in range(added):
            seen = seen.set(f"cdr:gen/{name}-r{r}-{i:07d}", 1_790_000_000 + r)
        part.wallets[name] = msgspec.structs.replace(state, seen=seen)
    part.events_offset += added


def timed(snapshotter: Snapshotter, out: Counted) -> float:
    t0 = time.process_time()
    snapshotter.write(0, out)  # type: ignore[arg-type]
    return time.process_time() - t0


def measure(window: int, added: int, rounds: int, every_chunk: bool) -> dict[str, float]:
    """Per snapshot after the first: CPU seconds, records and bytes."""
    wallets = {f"w{i}": wallet(f"w{i}", window) for i in range(WALLETS)}
    snapshotter = owner(PartitionState(wallets, events_offset=0, last_decision="d-0"))
    snapshotter.write(0, Counted())  # type: ignore[arg-type]
    part, out, cpu = snapshotter.processor.partitions[0], Counted(), 0.0
    for r in range(rounds):
        grow(part, added, r)
        if every_chunk:
            snapshotter.epochs[0].layouts.clear()
        cpu += timed(snapshotter, out)
    per = 1 / rounds
    return {"cpu_ms": cpu * per * 1e3, "records": out.records * per, "mb": out.bytes * per / 1e6}


def after_recovery(window: int, added: int) -> dict[str, float]:
    """The first snapshot of a worker that recovered the partition from a snapshot (read
    back through `read_snapshot`, as ``ownership.recovered_from`` does) and then rated
    ``added`` CDRs per wallet: CPU seconds, records and bytes."""
    wallets = {f"w{i}": wallet(f"w{i}", window) for i in range(WALLETS)}
    first = Counted()
    owner(PartitionState(wallets, events_offset=0, last_decision="d-0")).write(0, first)  # type: ignore[arg-type]
    read = snapshots.read_snapshot(first.kept, 0)
    assert read.state is not None and read.epoch is not None, "the snapshot did not read back"
    written = Written(read.epoch, dict(read.state.wallets), read.layouts)
    snapshotter = owner(read.state, written)
    # As a worker does after its recoveries (stream/garbage.py): what they built is frozen,
    # so that a collection does not walk it all again on the snapshot's allocations.
    gc.collect()
    gc.freeze()
    try:
        grow(read.state, added, 0)
        out = Counted()
        cpu = timed(snapshotter, out)
    finally:
        gc.unfreeze()
    return {"cpu_ms": cpu * 1e3, "records": out.records, "mb": out.bytes / 1e6}


FLEET = 100_000
"""SIMs of one fleet wallet: a large customer's devices on one prepaid wallet."""


def fleet(sims: int) -> WalletState:
    """A wallet of ``sims`` SIMs attached by commands, each with two tier counters."""
    iccids = [f"8944{i:015d}" for i in range(sims)]
    attached = Map({i: Subscription(i, "fleet", "iot-basic", None, 1_780_000_000) for i in iccids})
    counters = Map({(i, s, "2026-11"): 1_000 for i in iccids for s in ("data", "sms")})
    return msgspec.structs.replace(initial_state("fleet"), attached=attached, tier_used=counters)


def measure_fleet(sims: int, added: int) -> dict[str, Any]:
    """A fleet wallet's first snapshot, then one after ``added`` CDRs (as many new ids and
    counters changed, its SIMs the same): CPU, records, bytes and the largest record; and
    the size of its state in one record, as a snapshot wrote it before its large maps had
    chunks of their own (over the record limit: every snapshot of its partition skipped)."""
    state = fleet(sims)
    one_record = len(encode_state(without_ids(state)))
    snapshotter = owner(PartitionState({"fleet": state}, events_offset=0, last_decision="d-0"))
    first = Counted()
    cpu_first = timed(snapshotter, first)
    part = snapshotter.processor.partitions[0]
    seen, counters = state.seen, state.tier_used
    for i in range(added):
        seen = seen.set(f"cdr:gen/fleet-{i:09d}", 1_790_000_000 + i)
        counters = counters.set((f"8944{i % sims:015d}", "data", "2026-11"), 2_000 + i)
    part.wallets["fleet"] = msgspec.structs.replace(state, seen=seen, tier_used=counters)
    part.events_offset += added
    later = Counted()
    cpu_later = timed(snapshotter, later)
    assert snapshotter.metrics.snapshots_skipped._value.get() == 0, "a fleet snapshot skipped"
    return {
        "sims": sims,
        "one_record_mb": one_record / 1e6,
        "first": first.figures(cpu_first),
        "later": later.figures(cpu_later),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--added", type=int, default=3_000, help="new ids per wallet per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.added < 0 or args.rounds <= 0:
        parser.error("--added must be at least 0 and --rounds positive")
    rows: list[tuple[str, str]] = []
    results = {}
    for window in WINDOWS:
        now = measure(window, args.added, args.rounds, every_chunk=False)
        whole = measure(window, args.added, args.rounds, every_chunk=True)
        recovered = after_recovery(window, args.added)
        results[str(window)] = {
            "changed_chunks": now,
            "every_chunk": whole,
            "after_recovery": recovered,
        }
        labelled = (
            ("changed chunks", now),
            ("every chunk", whole),
            ("first after a recovery", recovered),
        )
        for label, m in labelled:
            rows.append(
                (
                    f"{window:,} ids per wallet, {label}",
                    f"{m['cpu_ms']:,.1f} ms CPU, {m['records']:,.0f} records, {m['mb']:,.2f} MB",
                )
            )
    large = measure_fleet(FLEET, args.added)
    for label in ("first", "later"):
        m = large[label]
        rows.append(
            (
                f"a fleet of {FLEET:,} SIMs, {label} snapshot",
                f"{m['cpu_ms']:,.1f} ms CPU, {m['records']:,.0f} records, {m['mb']:,.2f} MB, "
                f"largest {m['largest_kb']:,.0f} kB",
            )
        )
    rows.append((f"a fleet of {FLEET:,} SIMs in one record", f"{large['one_record_mb']:,.2f} MB"))
    title = (
        f"snapshots: {WALLETS} wallets, {args.added:,} new ids each between snapshots, "
        f"{chunks.CHUNK_IDS:,} ids per chunk, {chunks.CHUNK_ENTRIES:,} entries per map chunk"
    )
    print(table(rows, title))
    publish(
        "snapshots",
        {
            "wallets": WALLETS,
            "added_per_wallet": args.added,
            "rounds": args.rounds,
            "chunk_ids": chunks.CHUNK_IDS,
            "chunk_entries": chunks.CHUNK_ENTRIES,
            "windows": results,
            "fleet": large,
        },
    )


if __name__ == "__main__":
    main()
