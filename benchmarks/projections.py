"""How fast do the ClickHouse projections fill? Rebuild time and insert rate for N events.

The events come from rating generated CDRs (example catalog, seeded) into a SQLite event
store, once: the store is kept in ``out/bench/`` and reused while it holds at least
``--events`` events. Then, on embedded chDB: reading the store (as ``StoredEvent``s, and as
raw ``(position, payload)`` pairs, which is what the projector reads), inserting the stored
JSON from memory (ClickHouse parses it and maps it to rows), and a full ``rebuild`` (read
the store while ClickHouse inserts). The machine may be shared: each timed step runs
``--repeat`` times, and the best and median runs are reported, with the process CPU time
(chDB's threads included) of the best rebuild. Usage:
``python benchmarks/projections.py [--events N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from _common import environment, publish, table

from engine.catalog import load_catalog
from engine.offline.generate import generate_cdrs, generate_commands, write_lines
from engine.offline.run import rate_all
from engine.projections.clickhouse import connect
from engine.projections.projector import Projector
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
        # About 1.048 events per CDR at this scale with the example catalog (997,934 from
        # 952,380 CDRs): 1.04 makes at least ``target``, so the next run reuses the store.
        write_lines(cdrs, generate_cdrs(catalog, 5000, int(target / 1.04), seed, 91, 0.0))
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


def timed(repeat: int, step: Callable[[], object]) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each of ``repeat`` runs of ``step``."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        runs.append((time.perf_counter() - w0, time.process_time() - c0))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    url = events_store(args.events, args.seed)
    load_before = os.getloadavg()[0]
    catalog = load_catalog(CATALOG)
    store = open_store(url)
    n = store.position()

    def read_all() -> None:
        for _ in store.read_all(0, 200_000):
            pass

    def read_payloads() -> None:
        for _ in store.read_payloads(0, 200_000):
            pass

    t_read_all = timed(args.repeat, read_all)
    t_read = timed(args.repeat, read_payloads)
    stored = [s for batch in store.read_all(0, 200_000) for s in batch]

    work = Path(tempfile.mkdtemp())
    try:
        client = connect(f"chdb://{work / 'ch'}")
        projector = Projector(client, catalog)

        def apply() -> None:
            projector.drop()
            projector.create()
            projector.apply(stored)

        def rebuild() -> None:
            assert projector.rebuild(store, direct=False) == n

        def rebuild_direct() -> None:
            assert projector.rebuild(store, direct=True) == n

        t_apply = timed(args.repeat, apply)
        stored.clear()
        t_rebuild = timed(args.repeat, rebuild)
        python_counts = projector.counts()
        t_direct = timed(args.repeat, rebuild_direct)
        counts = projector.counts()
        assert counts == python_counts, (counts, python_counts)

        t0 = time.perf_counter()
        for view in ("wallet_balances", "revenue_by_provider", "pool_status"):
            client.query(f"SELECT * FROM {view}")
        t_views = time.perf_counter() - t0
        client.close()
    finally:
        store.close()
        shutil.rmtree(work)

    # The machine may be shared: the figures are only as good as the load beside them.
    load_after = os.getloadavg()[0]

    def best(runs: list[tuple[float, float]]) -> float:
        return min(w for w, _ in runs)

    def median(runs: list[tuple[float, float]]) -> float:
        return statistics.median(w for w, _ in runs)

    rebuild_cpu = min(t_rebuild)[1]
    figures = [
        ("events", f"{n:,}"),
        ("read_all (µs/event)", f"{best(t_read_all) / n * 1e6:.2f}"),
        ("read_payloads (µs/event)", f"{best(t_read) / n * 1e6:.2f}"),
        ("insert JSON from memory (events/s)", f"{n / best(t_apply):,.0f}"),
        ("rebuild from store, best (events/s)", f"{n / best(t_rebuild):,.0f}"),
        ("rebuild from store, median (events/s)", f"{n / median(t_rebuild):,.0f}"),
        ("rebuild from store, best (s)", f"{best(t_rebuild):.2f}"),
        ("rebuild CPU, all threads (µs/event)", f"{rebuild_cpu / n * 1e6:.2f}"),
        ("direct rebuild (sqlite()), best (events/s)", f"{n / best(t_direct):,.0f}"),
        ("direct rebuild, median (events/s)", f"{n / median(t_direct):,.0f}"),
        ("direct rebuild CPU, all threads (µs/event)", f"{min(t_direct)[1] / n * 1e6:.2f}"),
        ("3 views queried (s)", f"{t_views:.2f}"),
        ("load average (1 min), before / after", f"{load_before:.1f} / {load_after:.1f}"),
    ]
    figures += [(f"rows in {t}", f"{c:,}") for t, c in counts.items()]
    print(table(figures, f"projections: {n:,} events into embedded ClickHouse (chDB)"))
    env = environment()
    env |= {"chdb": version("chdb"), "clickhouse-connect": version("clickhouse-connect")}

    def runs(timings: list[tuple[float, float]]) -> list[dict[str, float]]:
        return [{"wall": round(w, 3), "cpu": round(c, 3)} for w, c in timings]

    publish(
        "projections",
        {
            "events": n,
            "source": "SQLite event store rated from generated CDRs",
            "path": "stored JSON inserted as is (JSONEachRow); ClickHouse maps it to rows",
            "runs": {
                "read_all": runs(t_read_all),
                "read_payloads": runs(t_read),
                "insert_from_memory": runs(t_apply),
                "rebuild": runs(t_rebuild),
                "rebuild_direct": runs(t_direct),
            },
            "rebuild_direct_events_per_second": round(n / best(t_direct)),
            "rebuild_direct_events_per_second_median": round(n / median(t_direct)),
            "views_seconds": round(t_views, 3),
            "read_payloads_us_per_event": round(best(t_read) / n * 1e6, 2),
            "insert_events_per_second": round(n / best(t_apply)),
            "rebuild_events_per_second": round(n / best(t_rebuild)),
            "rebuild_events_per_second_median": round(n / median(t_rebuild)),
            "rebuild_seconds": round(best(t_rebuild), 3),
            "rebuild_cpu_us_per_event": round(rebuild_cpu / n * 1e6, 2),
            "rows": counts,
            "load_average": {"before": round(load_before, 2), "after": round(load_after, 2)},
        },
        env,
    )


if __name__ == "__main__":
    main()
