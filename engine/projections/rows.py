"""The catalog's rows: the dimension tables and each pool bucket's allowance, with no I/O.

The events' rows are mapped by ClickHouse itself (``tables.MAPPINGS``); what is computed here
needs the domain: a pool's allowance in a cycle depends on its kind and the catalog's SIMs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..domain import Catalog, initial_state
from ..domain.cycles import cycle_of
from ..domain.membership import pool_allowance
from ..domain.pools import allowance


def catalog_rows(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog's dimension tables (all but ``pool_allowances``), as row tuples in the
    order of ``tables.CATALOG_COLUMNS``."""
    return {
        "providers": [(p.id, p.name) for p in catalog.providers.values()],
        "zones": [(z.id, z.name, list(z.networks)) for z in catalog.zones.values()],
        "wallets": [
            (
                w.id,
                w.name,
                w.currency,
                w.overdraft_limit,
                w.suspend_at,
                w.resume_at,
                w.cycle_anchor_day,
            )
            for w in catalog.wallets.values()
        ],
        "pools": [
            (p.id, p.wallet, p.kind, p.service, list(p.zones)) for p in catalog.pools.values()
        ],
    }


def allowance_rows(
    catalog: Catalog, buckets: Iterable[tuple[str, str]]
) -> list[tuple[str, str, int]]:
    """The allowance of each (pool, bucket) as the catalog sets it: a stacked pool's bundle
    size; a static pool's allowance; a flexible pool's per-SIM allowance times the catalog's
    SIMs of the pool active in the cycle; an adaptive pool's first tier (its steps are in
    ``pool_steps``). Unknown pools and bundles are left out."""
    out = []
    for pool_id, bucket in sorted(buckets):
        pool = catalog.pools.get(pool_id)
        if pool is None:
            continue
        if pool.kind == "stacked":
            size = next((b.size for b in pool.bundles if b.id == bucket), None)
            if size is not None:
                out.append((pool_id, bucket, size))
            continue
        try:
            start = datetime.fromisoformat(bucket).replace(tzinfo=UTC)
        except ValueError:
            continue
        wallet = catalog.wallets.get(pool.wallet)
        cycle = cycle_of(int(start.timestamp()), wallet.cycle_anchor_day if wallet else 1)
        state = initial_state(pool.wallet)
        granted = pool_allowance(state, catalog, pool, cycle, cycle.end)
        out.append((pool_id, bucket, allowance(pool, state, cycle, granted)))
    return out
