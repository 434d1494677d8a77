"""How fast does replay re-rate a store? CDRs per second over a SQLite event store.

Seeded data from the example catalog, rated into a fresh SQLite store (untimed), then
``replay`` with a catalog whose iot-eu v1 SMS and APAC data prices and iot-global revenue
shares differ: a dry run, the real run (appending the adjustments), and a second run that
finds nothing left to adjust, all in one process; then the real run again, on a copy of
the store, in two jobs (``replay(..., jobs=2)``: the example's wallets are shared out by
partition, acme in one job, the three others in the other). The parts are timed on their
own too, to say where the time goes.

While rating, the store takes wallet snapshots (``store.snapshots.take``) once, just before
the last ``--window-days`` of CDRs; a replay of that window (dry run) is timed re-rating each
wallet from its first input and from that snapshot (``from_snapshots``), counting the CDRs
compared (those of the window). Usage:
``python benchmarks/replay.py [--cdrs N] [--sims N] [--window-days N]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from _common import environment, save, table

from engine.catalog import load_catalog
from engine.codec import decode_event
from engine.domain import AdjustRating, evolve, initial_state, step
from engine.offline.generate import generate_cdrs, generate_commands, write_lines
from engine.offline.replay import replay
from engine.offline.run import rate_all
from engine.store import EventStore, open_store
from engine.store.snapshots import Taken, take

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"
CHANGES = (
    ('EU: {price: "0.05"}', 'EU: {price: "0.06"}'),
    ('APAC: {price: "0.15", per: MB}', 'APAC: {price: "0.17", per: MB}'),
    (
        'usage: {telco-a: 55, platform: "33.3333", reseller: "11.6667"}',
        'usage: {telco-a: 50, platform: "38.3333", reseller: "11.6667"}',
    ),
)


class SnapshotBefore:
    """The store, taking wallet snapshots once, before the first append of an event at or
    after ``cut`` (as a sink would now and then)."""

    def __init__(self, store: EventStore, cut: datetime) -> None:
        self.store = store
        self.cut = cut
        self.taken: Taken | None = None
        self.seconds = 0.0

    def append(self, events: Any, inputs: Any = ()) -> int:
        if self.taken is None and any(e.at >= self.cut for e in events):
            t0 = time.perf_counter()
            self.taken = take(self.store)
            self.seconds = time.perf_counter() - t0
        return self.store.append(events, inputs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class _Start(msgspec.Struct):
    started_at: datetime


def window_start(cdrs: Path, days: int) -> datetime:
    """``days`` before the latest CDR start, to the day."""
    latest = max(msgspec.json.decode(line, type=_Start).started_at for line in cdrs.open("rb"))
    return (latest - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdrs", type=int, default=200_000)
    parser.add_argument("--sims", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--window-days", type=int, default=14)
    args = parser.parse_args()

    old = load_catalog(CATALOG)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = CATALOG.read_text()
        for before, after in CHANGES:
            text = text.replace(before, after, 1)
        (root / "new.yaml").write_text(text)
        new = load_catalog(root / "new.yaml")
        cdrs, commands = root / "cdrs.jsonl", root / "commands.jsonl"
        write_lines(cdrs, generate_cdrs(old, args.sims, args.cdrs, args.seed, faults=0.0))
        write_lines(commands, generate_commands(old, args.seed))
        store = open_store(f"sqlite:///{root / 'events.db'}")
        start = window_start(cdrs, args.window_days)
        snapshotting = SnapshotBefore(store, start)
        t0 = time.perf_counter()
        rate_all(old, cdrs, commands, store=snapshotting)  # type: ignore[arg-type]
        t_setup = time.perf_counter() - t0
        assert snapshotting.taken is not None, "no CDR in the window"
        stats = store.stats()
        gc.collect()

        # the parts, each on its own
        t0 = time.perf_counter()
        inputs = {w: [s.item for s in store.read_inputs(w)] for w in store.wallets()}
        t_inputs = time.perf_counter() - t0
        t0 = time.perf_counter()
        for wallet_id, items in inputs.items():
            state = initial_state(wallet_id)
            for item in items:
                if not isinstance(item, AdjustRating):
                    _, state = step(state, item, new)
        t_rerate = time.perf_counter() - t0
        del inputs
        t0 = time.perf_counter()
        streams = {
            w: [decode_event(r.payload) for r in store.read_stream(w)] for w in store.wallets()
        }
        t_events = time.perf_counter() - t0
        t0 = time.perf_counter()
        for wallet_id, events in streams.items():
            state = initial_state(wallet_id)
            for e in events:
                state = evolve(state, e)
        t_fold = time.perf_counter() - t0
        del streams
        gc.collect()

        store.close()  # a copy for the run in two jobs, the WAL checkpointed
        shutil.copy(root / "events.db", root / "jobs.db")
        store = open_store(f"sqlite:///{root / 'events.db'}")

        runs = {}
        window = {}
        window_cpu = {}  # CPU seconds: steadier than the wall time on a shared machine
        for name, dry in (("dry run", True), ("replay", False), ("again (nothing left)", False)):
            if name == "replay":
                for label, snapped in (("from the first input", False), ("from snapshots", True)):
                    t0, c0 = time.perf_counter(), time.process_time()
                    found = replay(store, new, start=start, dry_run=True, from_snapshots=snapped)
                    window[label] = (time.perf_counter() - t0, found)
                    window_cpu[label] = time.process_time() - c0
            t0 = time.perf_counter()
            report = replay(store, new, dry_run=dry)
            runs[name] = (time.perf_counter() - t0, report)
        store.close()
        url = f"sqlite:///{root / 'jobs.db'}"
        store = open_store(url)
        t0 = time.perf_counter()
        report = replay(store, new, jobs=2, opener=lambda: open_store(url))
        runs["replay, 2 jobs"] = (time.perf_counter() - t0, report)
        store.close()
        assert report == runs["replay"][1], "two jobs must give what one gives"

    compared = runs["replay"][1].rerated
    rows = [
        ("CDRs in the store", f"{compared:,}"),
        ("events / inputs stored", f"{stats.events:,} / {stats.inputs:,}"),
        ("CDRs changed", f"{runs['replay'][1].changed:,}"),
        ("events appended", f"{runs['replay'][1].appended:,}"),
        ("read + decode inputs, µs/CDR", f"{t_inputs / compared * 1e6:.1f}"),
        ("re-rate (step), µs/CDR", f"{t_rerate / compared * 1e6:.1f}"),
        ("read + decode events, µs/CDR", f"{t_events / compared * 1e6:.1f}"),
        ("fold (evolve), µs/CDR", f"{t_fold / compared * 1e6:.1f}"),
    ]
    for name, (elapsed, _) in runs.items():
        rows.append((f"{name}, CDRs/s", f"{compared / elapsed:,.0f}"))
    in_window = window["from the first input"][1].rerated
    rows.append((f"window: last {args.window_days} days, CDRs", f"{in_window:,}"))
    changed = [found.changed for _, found in window.values()]
    rows.append(("window CDRs changed (first input / snapshots)", f"{changed[0]} / {changed[1]}"))
    for name, (elapsed, _) in window.items():
        rows.append((f"window dry run {name}, CDRs/s", f"{in_window / elapsed:,.0f}"))
        rows.append(("  CPU µs per window CDR", f"{window_cpu[name] / in_window * 1e6:,.0f}"))
    taken = snapshotting.taken
    rows.append(
        ("store snapshot before it, wallets / s", f"{taken.written} / {snapshotting.seconds:.2f}")
    )
    env = environment()
    print(table(rows, f"replay over a SQLite store ({env['cpu']}, Python {env['python']})"))
    print(f"(setup: rating into the store took {t_setup:.1f} s; aim 100,000 CDRs/s)")
    path = save(
        "replay",
        {
            "environment": env,
            "cdrs": compared,
            "events": stats.events,
            "inputs": stats.inputs,
            "changed": runs["replay"][1].changed,
            "appended": runs["replay"][1].appended,
            "us_per_cdr": {
                "read_inputs": t_inputs / compared * 1e6,
                "rerate": t_rerate / compared * 1e6,
                "read_events": t_events / compared * 1e6,
                "fold": t_fold / compared * 1e6,
            },
            "cdrs_per_second": {name: compared / elapsed for name, (elapsed, _) in runs.items()},
            "window": {
                "days": args.window_days,
                "start": start.isoformat(),
                "cdrs": in_window,
                "changed": changed,
                "cdrs_per_second": {
                    name: in_window / elapsed for name, (elapsed, _) in window.items()
                },
                "cpu_us_per_cdr": {name: cpu / in_window * 1e6 for name, cpu in window_cpu.items()},
                "snapshot_seconds": snapshotting.seconds,
                "snapshot_wallets": taken.written,
            },
            "load_average": list(os.getloadavg()),
            "aim_cdrs_per_second": 100_000,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
