"""What does this machine allow? The floor: the least any rating loop over these lines must do.

A minimal Python loop over generated CDR lines: a typed msgspec decode, a dict lookup for the
wallet, integer price arithmetic, one set insert for dedup, one event Struct built and
encoded. No rules, no pools, no grants: what is left is the interpreter's and msgspec's cost
per record. ``rate_core.py`` runs it on the same lines in the same process and reports its
own speed as a ratio of this one, because absolute figures drift by a third on shared
machines and the ratio does not. Usage: ``python benchmarks/floor.py [--cdrs N]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from datetime import datetime
from pathlib import Path

import msgspec
from _common import publish, table

from engine.catalog import load_catalog
from engine.domain import Catalog
from engine.offline.generate import generate_cdrs

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"


class FloorCdr(msgspec.Struct, frozen=True):
    """The CDR contract's fields, decoded as the engine decodes them (typed, one pass)."""

    cdr_id: str
    iccid: str
    service: str
    started_at: datetime
    volume: int
    mcc: str
    mnc: str
    apn: str | None = None
    rat: str | None = None
    duration_s: int | None = None
    source: str = ""


class FloorRated(msgspec.Struct, frozen=True, tag=True):
    """One event per CDR, about the size of a real ``UsageRated``."""

    event_id: str
    wallet_id: str
    iccid: str
    at: datetime
    volume: int
    amount: int


PRICE_PER_UNIT = 19_500
"""A price in 10⁻¹² of the currency per unit (0.0000195 EUR per byte-ish unit)."""


def wallets_by_iccid(catalog: Catalog, lines: list[bytes]) -> dict[str, str]:
    """Every ICCID of ``lines`` mapped to its wallet, as one plain dict (made before timing)."""
    from engine.domain.routing import wallet_of

    found: dict[str, str] = {}
    decoder = msgspec.json.Decoder(FloorCdr)
    for line in lines:
        iccid = decoder.decode(line).iccid
        if iccid not in found:
            wallet = wallet_of(catalog, {}, iccid, 0)
            if wallet is not None:
                found[iccid] = wallet
    return found


def floor_loop(lines: list[bytes], wallets: dict[str, str]) -> int:
    """The floor itself; returns the bytes encoded so the work cannot be skipped."""
    decode = msgspec.json.Decoder(FloorCdr).decode
    encode = msgspec.json.Encoder().encode
    seen: set[str] = set()
    size = 0
    for line in lines:
        cdr = decode(line)
        wallet = wallets.get(cdr.iccid)
        if wallet is None or cdr.cdr_id in seen:
            continue
        seen.add(cdr.cdr_id)
        amount = (cdr.volume * PRICE_PER_UNIT + 500_000) // 1_000_000
        event_id = f"cdr:{cdr.source}/{cdr.cdr_id}#0"
        event = FloorRated(event_id, wallet, cdr.iccid, cdr.started_at, cdr.volume, amount)
        size += len(encode(event))
    return size


def measure(lines: list[bytes], wallets: dict[str, str], rounds: int = 3) -> float:
    """The floor's best speed over ``rounds`` runs, in lines per second."""
    return measure_both(lines, wallets, rounds)[0]


def measure_both(
    lines: list[bytes], wallets: dict[str, str], rounds: int = 3
) -> tuple[float, float]:
    """The floor's best speed over ``rounds`` runs, in lines per second: by the wall clock,
    and by this process's CPU time (which other work on a shared machine moves less)."""
    wall = cpu = float("inf")
    for _ in range(rounds):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        floor_loop(lines, wallets)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return len(lines) / wall, len(lines) / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--sims", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    catalog = load_catalog(CATALOG)
    lines = list(generate_cdrs(catalog, args.sims, args.cdrs, args.seed, faults=0.0))
    wallets = wallets_by_iccid(catalog, lines)
    speed = measure(lines, wallets)
    print(table([("floor (lines/s)", f"{speed:,.0f}")], f"floor: {len(lines):,} CDR lines"))
    publish("floor", {"cdrs": len(lines), "lines_per_second": round(speed)})


if __name__ == "__main__":
    main()
