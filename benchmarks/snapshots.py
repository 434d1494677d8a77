"""What does a partition's snapshot cost the worker's event loop as its wallets' dedup windows
grow? A snapshot (``engine/stream/snapshotter.py``) is written on the event loop, in the
partition's transaction, every ``--snapshot-every`` seconds.

Two wallets whose current dedup generation holds ``WINDOW`` ids each (as a busy wallet's
does, up to the dedup window), snapshotted once; then rounds of ``--added`` new ids per
wallet, each round followed by a snapshot. Per snapshot: the CPU time of `Snapshotter.write`,
the records and the bytes it produces. Measured as the worker writes it (only the id chunks
that changed since the wallet's previous record), and, in the same process on the same
states, with every chunk written again (what a snapshot wrote before chunks were kept).
Usage: ``python benchmarks/snapshots.py [--added N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import msgspec
from _common import environment, save, table

from engine.catalog import load_catalog
from engine.domain import WalletState, initial_state
from engine.domain.keylog import KeyLog
from engine.stream import snapshots
from engine.stream.metrics import Metrics
from engine.stream.processor import PartitionState, RatingProcessor
from engine.stream.settings import WorkerSettings
from engine.stream.snapshotter import Snapshotter

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"
WINDOWS = (60_000, 1_000_000)
"""Ids per wallet: about what ``stream``'s 1,000,000 CDRs leave in each of its 16 wallets,
and a busy wallet's window in production (a thousand SIMs at a thousand CDRs a day)."""
WALLETS = 2


class Counted:
    """A partition writer that counts what a snapshot produces."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.records += 1
        self.bytes += len(value)


def wallet(name: str, ids: int) -> WalletState:
    seen = KeyLog.of((f"cdr:gen/{name}-{i:09d}", 1_780_000_000 + i // 10) for i in range(ids))
    return msgspec.structs.replace(initial_state(name), seen=seen)


def measure(window: int, added: int, rounds: int, every_chunk: bool) -> dict[str, float]:
    """Per snapshot after the first: CPU seconds, records and bytes."""
    processor = RatingProcessor(load_catalog(CATALOG))
    wallets = {f"w{i}": wallet(f"w{i}", window) for i in range(WALLETS)}
    processor.install(0, PartitionState(wallets, events_offset=0, last_decision="d-0"))
    settings = WorkerSettings(catalog=CATALOG, data_dir=Path())
    snapshotter = Snapshotter(settings, "wallet.snapshots", processor, Metrics())
    snapshotter.write(0, Counted())  # type: ignore[arg-type]
    part, out, cpu = processor.partitions[0], Counted(), 0.0
    for r in range(rounds):
        for name, state in list(part.wallets.items()):
            seen = state.seen
            for i in range(added):
                seen = seen.set(f"cdr:gen/{name}-r{r}-{i:07d}", 1_790_000_000 + r)
            part.wallets[name] = msgspec.structs.replace(state, seen=seen)
        part.events_offset += added
        if every_chunk:
            snapshotter.epochs[0].layouts.clear()
        t0 = time.process_time()
        snapshotter.write(0, out)  # type: ignore[arg-type]
        cpu += time.process_time() - t0
    per = 1 / rounds
    return {"cpu_ms": cpu * per * 1e3, "records": out.records * per, "mb": out.bytes * per / 1e6}


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
        results[str(window)] = {"changed_chunks": now, "every_chunk": whole}
        for label, m in (("changed chunks", now), ("every chunk", whole)):
            rows.append(
                (
                    f"{window:,} ids per wallet, {label}",
                    f"{m['cpu_ms']:,.1f} ms CPU, {m['records']:,.0f} records, {m['mb']:,.2f} MB",
                )
            )
    title = (
        f"snapshots: {WALLETS} wallets, {args.added:,} new ids each between snapshots, "
        f"{snapshots.CHUNK_IDS:,} ids per chunk"
    )
    print(table(rows, title))
    env = environment()
    print("  ".join(f"{k}={v}" for k, v in env.items()))
    path = save(
        "snapshots",
        {
            "wallets": WALLETS,
            "added_per_wallet": args.added,
            "rounds": args.rounds,
            "chunk_ids": snapshots.CHUNK_IDS,
            "windows": results,
            "environment": env,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
