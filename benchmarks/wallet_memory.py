"""How much does a worker hold per wallet? Rate a generated stream offline, then measure each
wallet's state: in memory (Python heap, traced while the state is rebuilt from its snapshot
record) and as a snapshot record (the msgpack bytes of ``engine/stream/snapshots.py``).

The state grows with the CDR ids kept for dedup (two generations of at least the dedup
window), the per-SIM tier counters of each cycle and the pool counters, so the figures are
per wallet and per id kept. Usage: ``python benchmarks/wallet_memory.py [--cdrs N]``.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from pathlib import Path

import msgspec
from _common import environment, save, table
from immutables import Map

from engine.catalog import load_catalog
from engine.codec import decode_cdr
from engine.domain import Cdr, WalletState
from engine.offline.generate import generate_cdrs
from engine.offline.pipeline import Pipeline
from engine.states import StateRecord, from_record, to_record

CATALOG = Path(__file__).parent.parent / "examples" / "catalog.yaml"
_encoder = msgspec.msgpack.Encoder()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdrs", type=int, default=300_000)
    parser.add_argument("--sims", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=91)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    catalog = load_catalog(CATALOG)
    pipeline = Pipeline(catalog)
    for line in generate_cdrs(catalog, args.sims, args.cdrs, args.seed, args.days, faults=0.0):
        cdr = decode_cdr(line)
        if isinstance(cdr, Cdr):
            pipeline.feed(cdr)

    rows: list[tuple[str, str]] = []
    wallets = {}
    for wallet_id, state in sorted(pipeline.states.items()):
        heap_bytes, snapshot_bytes = _measure(state)
        no_ids = msgspec.structs.replace(state, seen=Map(), seen_before=Map())
        no_tiers = msgspec.structs.replace(state, tier_used=Map())
        ids = len(state.seen) + len(state.seen_before)
        wallets[wallet_id] = {
            "ids_kept": ids,
            "tier_counters": len(state.tier_used),
            "pool_counters": len(state.pool_used),
            "heap_bytes": heap_bytes,
            "snapshot_bytes": snapshot_bytes,
            "heap_bytes_of_ids": heap_bytes - _measure(no_ids)[0],
            "heap_bytes_of_tier_counters": heap_bytes - _measure(no_tiers)[0],
        }
        rows.append((f"{wallet_id}: CDR and command ids kept", f"{ids:,}"))
        rows.append(
            (
                f"{wallet_id}: tier / pool counters",
                f"{len(state.tier_used):,} / {len(state.pool_used):,}",
            )
        )
        rows.append((f"{wallet_id}: heap", f"{heap_bytes / 1e6:,.2f} MB"))
        rows.append((f"{wallet_id}: snapshot record", f"{snapshot_bytes / 1e6:,.2f} MB"))
    total_ids = sum(w["ids_kept"] for w in wallets.values())
    heap = sum(w["heap_bytes"] for w in wallets.values())
    snap = sum(w["snapshot_bytes"] for w in wallets.values())
    total_tiers = sum(w["tier_counters"] for w in wallets.values())
    per_id_heap = sum(w["heap_bytes_of_ids"] for w in wallets.values()) / max(1, total_ids)
    per_tier_heap = sum(w["heap_bytes_of_tier_counters"] for w in wallets.values()) / max(
        1, total_tiers
    )
    rows.append(("heap per CDR id kept", f"{per_id_heap:,.0f} B"))
    rows.append(("heap per tier counter (SIM × service × cycle)", f"{per_tier_heap:,.0f} B"))
    rows.append(("heap, all wallets", f"{heap / 1e6:,.2f} MB"))
    rows.append(("snapshot records, all wallets", f"{snap / 1e6:,.2f} MB"))

    env = environment()
    title = (
        f"wallet state: {args.cdrs:,} CDRs from {args.sims:,} SIMs over {args.days} days, "
        f"example catalog (dedup window {catalog.dedup_window // 86400} days)"
    )
    print(table(rows, title))
    print(f"\n{env}")
    path = save(
        "wallet_memory",
        {
            "environment": env,
            "cdrs": args.cdrs,
            "sims": args.sims,
            "days": args.days,
            "wallets": wallets,
            "heap_bytes_per_id": per_id_heap,
            "heap_bytes_per_tier_counter": per_tier_heap,
        },
    )
    print(f"wrote {path}")


def _measure(state: WalletState) -> tuple[int, int]:
    """(heap bytes, snapshot record bytes) of one wallet state: the heap is what a fresh copy
    of the state allocates as it is decoded from its record, as a recovering worker does."""
    raw = _encoder.encode(to_record(state))
    gc.collect()
    tracemalloc.start()
    copy = from_record(msgspec.msgpack.decode(raw, type=StateRecord))
    heap = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del copy
    return heap, len(raw)


if __name__ == "__main__":
    main()
