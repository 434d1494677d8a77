"""How fast is the pure core? CDR bytes -> decode -> route -> decide+evolve -> encode, one core.

Seeded data from the example catalog (``rating-engine generate``), timed per stage so the
figures say where the time goes, then the floor (floor.py) on the same lines: the ratio
between the two is the figure to compare across machines. Both run with CPython's collector
settings, then again with the worker's (``RATING_GC_THRESHOLD``'s default and a frozen heap);
each by the wall clock and by CPU time (steadier when other work shares the machine).
Last, the rate agent's own path in this process, without Kafka: the same lines grouped as
enrich writes them to ``cdr.by-wallet``, each record answered by the worker's ``Rater``
(decode, dedup by origin, the processor, the decision encoded, follow-ups, the latency
histograms) into a transaction kept in memory: what the worker's event loop spends per CDR
besides its Kafka clients. Usage: ``python benchmarks/rate_core.py [--cdrs N]``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import time
from collections.abc import Callable
from pathlib import Path

from _common import publish, table
from floor import measure_both, wallets_by_iccid

from engine.catalog import load_catalog
from engine.codec import Rejected, decode_cdr, encode, internal_error
from engine.domain import Catalog, Cdr, WalletState, initial_state, step
from engine.domain.routing import wallet_of
from engine.offline.generate import generate_cdrs
from engine.stream.garbage import parse_threshold
from engine.stream.metrics import Metrics
from engine.stream.positions import Record
from engine.stream.processor import RatingProcessor
from engine.stream.rater import BatchTally, Rater
from engine.stream.routed import RoutedGroup, partition_of
from engine.stream.settings import GC_THRESHOLD
from engine.stream.topics import Topics, load_topics

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--sims", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--agent-cdrs", type=int, default=200_000, help="CDRs through the rate agent's path"
    )
    args = parser.parse_args()

    catalog = load_catalog(CATALOG)
    lines = list(generate_cdrs(catalog, args.sims, args.cdrs, args.seed, faults=0.0))
    gc.collect()

    t0 = time.perf_counter()
    decoded = [decode_cdr(line) for line in lines]
    t_decode = time.perf_counter() - t0

    cdrs = [c for c in decoded if isinstance(c, Cdr)]
    t0 = time.perf_counter()
    routes = [wallet_of(catalog, {}, c.iccid, 0) for c in cdrs]
    t_route = time.perf_counter() - t0

    states = {}
    outputs = []
    t0 = time.perf_counter()
    for cdr, wallet in zip(cdrs, routes, strict=True):
        if wallet is None:
            continue
        state = states.get(wallet) or initial_state(wallet)
        events, states[wallet] = step(state, cdr, catalog)
        outputs.append(events)
    t_decide = time.perf_counter() - t0

    t0 = time.perf_counter()
    size = 0
    for events in outputs:
        for e in events:
            size += len(encode(e))
    t_encode = time.perf_counter() - t0

    # The whole path in one loop, as a worker runs it: the stages' lists are dropped first,
    # since a worker keeps no million-event backlog for the collector to walk again and again.
    del decoded, cdrs, routes, outputs
    wallets = wallets_by_iccid(catalog, lines)
    t_total, cpu_total = whole_path(catalog, lines)
    floor, floor_cpu = measure_both(lines, wallets)
    # Then both again with the collector as a worker sets it (stream/garbage.py): its
    # thresholds, and what is alive before the loop frozen (the catalog, the lines).
    threshold = gc.get_threshold()
    gc.set_threshold(*(parse_threshold(GC_THRESHOLD) or threshold))
    gc.collect()
    gc.freeze()
    try:
        t_worker_gc, cpu_worker_gc = whole_path(catalog, lines)
        floor_worker_gc, floor_cpu_worker_gc = measure_both(lines, wallets)
        agent_cpu = rate_agent(catalog, lines[: args.agent_cdrs])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)

    n = len(lines)
    cpu_ratio_worker_gc = n / cpu_worker_gc / floor_cpu_worker_gc
    stages = {
        "decode": t_decode,
        "route": t_route,
        "decide+evolve": t_decide,
        "encode": t_encode,
    }
    rows = [(f"{k} (µs/CDR)", f"{v / n * 1e6:.2f}") for k, v in stages.items()]
    rows.append(("end to end (CDRs/s)", f"{n / t_total:,.0f}"))
    rows.append(("floor, same lines (lines/s)", f"{floor:,.0f}"))
    rows.append(("ratio to the floor", f"{n / t_total / floor:.3f}"))
    rows.append(("event bytes/CDR", f"{size / n:.0f}"))
    rows.append(("by CPU time: end to end (CDRs/s)", f"{n / cpu_total:,.0f}"))
    rows.append(("by CPU time: floor (lines/s)", f"{floor_cpu:,.0f}"))
    rows.append(("by CPU time: ratio", f"{n / cpu_total / floor_cpu:.3f}"))
    rows.append(("with the worker's GC: end to end (CDRs/s)", f"{n / t_worker_gc:,.0f}"))
    rows.append(("with the worker's GC: floor (lines/s)", f"{floor_worker_gc:,.0f}"))
    rows.append(("with the worker's GC: ratio", f"{n / t_worker_gc / floor_worker_gc:.3f}"))
    rows.append(("with the worker's GC, by CPU time: ratio", f"{cpu_ratio_worker_gc:.3f}"))
    core_us = cpu_worker_gc / n * 1e6
    rows.append(("  the same, CPU per CDR (µs)", f"{core_us:.2f}"))
    rows.append(("rate agent in process, CPU per CDR (µs)", f"{agent_cpu * 1e6:.2f}"))
    print(table(rows, f"rate_core: {n:,} CDRs, {args.sims:,} SIMs, one core"))
    publish(
        "rate_core",
        {
            "cdrs": n,
            "sims": args.sims,
            "seconds": {k: round(v, 4) for k, v in stages.items()} | {"total": round(t_total, 4)},
            "cdrs_per_second": round(n / t_total),
            "floor_lines_per_second": round(floor),
            "ratio_to_floor": round(n / t_total / floor, 4),
            "by_cpu_time": {
                "cdrs_per_second": round(n / cpu_total),
                "floor_lines_per_second": round(floor_cpu),
                "ratio_to_floor": round(n / cpu_total / floor_cpu, 4),
            },
            "worker_gc": {
                "threshold": GC_THRESHOLD,
                "cdrs_per_second": round(n / t_worker_gc),
                "floor_lines_per_second": round(floor_worker_gc),
                "ratio_to_floor": round(n / t_worker_gc / floor_worker_gc, 4),
                "ratio_to_floor_by_cpu_time": round(cpu_ratio_worker_gc, 4),
                "cpu_us_per_cdr": round(core_us, 2),
            },
            "rate_agent": {
                "cdrs": min(n, args.agent_cdrs),
                "cpu_us_per_cdr": round(agent_cpu * 1e6, 2),
            },
        },
    )


def whole_path(catalog: Catalog, lines: list[bytes]) -> tuple[float, float]:
    """Seconds for every line through decode, route, decide+evolve and encode, in one loop:
    by the wall clock, and in this process's CPU time."""
    gc.collect()
    states: dict[str, WalletState] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for line in lines:
        cdr = decode_cdr(line)
        if isinstance(cdr, Rejected):
            continue
        wallet = wallet_of(catalog, {}, cdr.iccid, 0)
        if wallet is None:
            continue
        state = states.get(wallet) or initial_state(wallet)
        events, states[wallet] = step(state, cdr, catalog)
        for e in events:
            encode(e)
    return time.perf_counter() - t0, time.process_time() - c0


class MemoryWriter:
    """A wallet partition's transaction kept in memory: what the rater produces into it is
    counted, per topic."""

    def __init__(self) -> None:
        self.produced: collections.Counter[str] = collections.Counter()
        self.last_decision = ""

    def produce(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        self.produced[topic] += 1


def routed_records(catalog: Catalog, lines: list[bytes], names: Topics) -> tuple[list[Record], int]:
    """``lines`` as enrich writes them to ``cdr.by-wallet`` (per batch of 200 ``cdr.raw``
    records of one partition, one record per wallet partition), and how many CDRs they hold."""
    topic, partitions = names.cdr_by_wallet.name, names.cdr_by_wallet.partitions
    records: list[Record] = []
    routed = 0
    for start in range(0, len(lines), 200):
        groups: dict[int, RoutedGroup] = {}
        for offset, line in enumerate(lines[start : start + 200], start):
            cdr = decode_cdr(line)
            wallet = wallet_of(catalog, {}, cdr.iccid, 0) if isinstance(cdr, Cdr) else None
            if wallet is None:
                continue
            home = partition_of(wallet.encode(), partitions)
            groups.setdefault(home, RoutedGroup(0)).add(wallet, offset, 0, line)
            routed += 1
        for home, group in groups.items():
            records.append(Record(topic, home, len(records), None, group.encode(), 0.0, None))
    return records, routed


def rate_agent(catalog: Catalog, lines: list[bytes]) -> float:
    """CPU seconds per CDR of the rate agent's path, as the worker runs it, in process."""
    run = agent_path(catalog, lines)
    c0 = time.process_time()
    routed = run()
    return (time.process_time() - c0) / routed


def agent_path(catalog: Catalog, lines: list[bytes]) -> Callable[[], int]:
    """The rate agent's path set up: ``lines`` routed into records, and a processor and a
    `Rater` as a worker has them. The function returned answers every record, a batch of
    1,000 CDRs at a time, and returns how many CDRs were decided (every one, or it exits)."""
    names = load_topics()
    records, routed = routed_records(catalog, lines, names)
    homes = {r.partition for r in records}
    partitions = names.cdr_by_wallet.partitions
    processor = RatingProcessor(catalog)
    for partition in homes:
        processor.recover(partition, [])
    rater = Rater(
        names,
        processor,
        Metrics(),
        functools.cache(lambda wallet: partition_of(wallet.encode(), partitions)),  # as agents
        lambda out, rejected, key: out.produce(names.cdr_rejected.name, key, encode(rejected)),
        lambda stage, exc, where, raw: internal_error(exc, where, raw),
    )
    writers = {partition: MemoryWriter() for partition in homes}

    def run() -> int:
        tally = BatchTally()
        decisions = 0
        for record in records:
            rater.answer(writers[record.partition], record, tally)  # type: ignore[arg-type]
            if len(tally.started) >= 1000 or record is records[-1]:
                # a batch done: its latencies and counts, as the agent takes them
                rater.observe(tally, 0.0)
                decisions += rater.counts(tally)["decisions"]
                tally = BatchTally()
        # Every routed CDR decided, each decision on wallet.events: nothing skipped or lost.
        produced = sum(w.produced[names.wallet_events.name] for w in writers.values())
        if not decisions == produced == routed:
            raise SystemExit(
                f"rate agent: {decisions} decisions, {produced} on "
                f"{names.wallet_events.name}, for {routed} CDRs"
            )
        return routed

    return run


if __name__ == "__main__":
    main()
