"""How fast do the ClickHouse projections fill? Rebuild time and insert rate for N events.

The events come from rating generated CDRs (example catalog, seeded) into a SQLite event
store, once: the store is kept in ``out/bench/`` and reused while it holds at least
``--events`` events. Then, on embedded chDB: the pure mapping alone (decode + rows), and a
full ``rebuild`` (read the store, decode, map, insert). Usage:
``python benchmarks/projections.py [--events N]``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

from _common import environment, save, table

from engine.catalog import load_catalog
from engine.codec import decode_event
from engine.offline.generate import generate_cdrs, generate_commands, write_lines
from engine.offline.run import rate_all
from engine.projections import Projector, connect
from engine.projections.rows import Rows
from engine.store import open_store

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"
STORES = Path(__file__).parent.parent / "out" / "bench"


def events_store(target: int, seed: int) -> str:
    """A SQLite store with at least ``target`` events, rated from generated CDRs."""
    path = STORES / f"projections-{target}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        store = open_store(url)
        try:
            if store.position() >= target:
                return url
        finally:
            store.close()
        path.unlink()
    catalog = load_catalog(CATALOG)
    STORES.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    try:
        cdrs, cmds = work / "cdrs.jsonl", work / "cmds.jsonl"
        # About 1.07 events per CDR at this scale with the example catalog.
        write_lines(cdrs, generate_cdrs(catalog, 5000, int(target / 1.05), seed, 91, 0.0))
        write_lines(cmds, generate_commands(catalog, seed, 91))
        store = open_store(url)
        try:
            t0 = time.perf_counter()
            rate_all(catalog, cdrs, cmds, store=store, progress=True)
            print(f"rated into {path} in {time.perf_counter() - t0:.0f} s: {store.position():,}")
        finally:
            store.close()
    finally:
        shutil.rmtree(work)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    url = events_store(args.events, args.seed)
    catalog = load_catalog(CATALOG)
    store = open_store(url)
    n = store.position()

    t0 = time.perf_counter()
    stored = [s for batch in store.read_all(0, 50_000) for s in batch]
    t_read = time.perf_counter() - t0
    gc.collect()

    t0 = time.perf_counter()
    events = [decode_event(s.payload) for s in stored]
    t_decode = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows = Rows()
    rows.add(events)
    t_rows = time.perf_counter() - t0
    del rows, stored
    gc.collect()

    work = Path(tempfile.mkdtemp())
    try:
        client = connect(f"chdb://{work / 'ch'}")
        projector = Projector(client, catalog)

        projector.drop()
        projector.create()
        t0 = time.perf_counter()
        projector.apply(events)
        t_apply = time.perf_counter() - t0
        del events
        gc.collect()

        t0 = time.perf_counter()
        applied = projector.rebuild(store)
        t_rebuild = time.perf_counter() - t0
        counts = projector.counts()

        t0 = time.perf_counter()
        for view in ("wallet_balances", "revenue_by_provider", "pool_status"):
            client.query(f"SELECT * FROM {view}")
        t_views = time.perf_counter() - t0
        client.close()
    finally:
        store.close()
        shutil.rmtree(work)

    assert applied == n
    figures = [
        ("events", f"{n:,}"),
        ("read store (µs/event)", f"{t_read / n * 1e6:.2f}"),
        ("decode (µs/event)", f"{t_decode / n * 1e6:.2f}"),
        ("rows (µs/event)", f"{t_rows / n * 1e6:.2f}"),
        ("apply in memory (events/s)", f"{n / t_apply:,.0f}"),
        ("rebuild from store (events/s)", f"{n / t_rebuild:,.0f}"),
        ("rebuild from store (s)", f"{t_rebuild:.1f}"),
        ("3 views queried (s)", f"{t_views:.2f}"),
    ]
    figures += [(f"rows in {t}", f"{c:,}") for t, c in counts.items()]
    print(table(figures, f"projections: {n:,} events into embedded ClickHouse (chDB)"))
    env = environment()
    from importlib.metadata import version

    env |= {"chdb": version("chdb"), "clickhouse-connect": version("clickhouse-connect")}
    print("  ".join(f"{k}={v}" for k, v in env.items()))
    path = save(
        "projections",
        {
            "events": n,
            "source": "SQLite event store rated from generated CDRs",
            "seconds": {
                "read_store": round(t_read, 3),
                "decode": round(t_decode, 3),
                "rows": round(t_rows, 3),
                "apply_in_memory": round(t_apply, 3),
                "rebuild": round(t_rebuild, 3),
                "views": round(t_views, 3),
            },
            "apply_events_per_second": round(n / t_apply),
            "rebuild_events_per_second": round(n / t_rebuild),
            "rows": counts,
            "environment": env,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
