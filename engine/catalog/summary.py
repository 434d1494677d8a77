"""A short, human summary of a loaded catalog (``rating-engine catalog check``)."""

from __future__ import annotations

from collections import Counter

from engine.domain.catalog import Catalog, PoolKind

POOL_KINDS: tuple[PoolKind, ...] = ("static", "flexible", "stacked", "adaptive")


def summarize(catalog: Catalog) -> str:
    """Counts per section, one line each; SIMs are broken down by wallet."""
    networks = sum(len(zone.networks) for zone in catalog.zones.values())
    versions = sum(len(plan.versions) for plan in catalog.plans.values())
    kinds = Counter(pool.kind for pool in catalog.pools.values())
    by_kind = ", ".join(f"{kinds[kind]} {kind}" for kind in POOL_KINDS if kinds[kind])
    sims = ", ".join(
        f"{wallet} {len(iccids):,}" for wallet, iccids in catalog.sims_by_wallet.items()
    )
    lines = [
        f"providers:     {len(catalog.providers)}",
        f"zones:         {len(catalog.zones)} ({_count(networks, 'network')})",
        f"plans:         {len(catalog.plans)} ({_count(versions, 'version')})",
        f"pools:         {len(catalog.pools)}" + (f" ({by_kind})" if by_kind else ""),
        f"wallets:       {len(catalog.wallets)}",
        f"SIMs:          {len(catalog.subscriptions):,}" + (f" ({sims})" if sims else ""),
        f"vouchers:      {len(catalog.vouchers)}",
    ]
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
