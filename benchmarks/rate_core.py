"""How fast is the pure core? CDR bytes -> decode -> route -> decide+evolve -> encode, one core.

Seeded data from the example catalog (``rating-engine generate``), timed per stage so the
figures say where the time goes, then the floor (floor.py) on the same lines: the ratio
between the two is the figure to compare across machines.
Usage: ``python benchmarks/rate_core.py [--cdrs N]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from _common import environment, save, table
from floor import measure, wallets_by_iccid

from engine.catalog import load_catalog
from engine.codec import Rejected, decode_cdr, encode
from engine.domain import Cdr, initial_state, step
from engine.domain.routing import wallet_of
from engine.offline.generate import generate_cdrs

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--sims", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
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
    gc.collect()
    states = {}
    t0 = time.perf_counter()
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
    t_total = time.perf_counter() - t0
    del states
    floor = measure(lines, wallets_by_iccid(catalog, lines))

    n = len(lines)
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
    print(table(rows, f"rate_core: {n:,} CDRs, {args.sims:,} SIMs, one core"))
    env = environment()
    print("  ".join(f"{k}={v}" for k, v in env.items()))
    path = save(
        "rate_core",
        {
            "cdrs": n,
            "sims": args.sims,
            "seconds": {k: round(v, 4) for k, v in stages.items()} | {"total": round(t_total, 4)},
            "cdrs_per_second": round(n / t_total),
            "floor_lines_per_second": round(floor),
            "ratio_to_floor": round(n / t_total / floor, 4),
            "environment": env,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
