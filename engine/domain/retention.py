"""Forgetting the counters of cycles no record can reach again.

A cycle's tier counters (``tier_used``) and its pool figures (``pool_used``, ``pool_tier``,
``pool_overage``) are not dead when the cycle closes: a late record of the cycle, still
inside the dedup window, is rated in it after ``PoolCycleClosed`` (it reads its tier
counter, and draws from its pool). They are dead once ``retained_since`` passes the
cycle's end: every record older than ``retained_since`` is refused as late before anything
reads them, ``retained_since`` never moves back, and a rated record's cycle ends after the
record. So when a dedup generation is dropped (the one moment ``retained_since`` moves),
``evolve`` drops them (``forget``): no decision can tell, and the state stays bounded by the
cycles of the last two dedup generations.

A pool's figures are dropped only for a cycle its ``PoolCycleClosed`` closed (the
``closing_ref`` entry in ``recurring`` names the last one): closing reads the figures of the
cycles it has not closed yet, and finds a never-closed pool's first cycle among them. A
stacked pool's buckets are bundles, never closed: they are kept.

The keys of routed charges (split billing's debits in the payer, ``ids.routed_command_id``)
are remembered in the dedup generations, as CDR keys are (``evolve``), and a routed charge
older than ``retained_since`` is refused as late (``account.apply_charge``). A state from
before that rule (a snapshot) holds them in ``commands`` instead, kept for good: they go
here too once ``retained_since`` passes their instant, since no decision reads them then.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from immutables import Map
from msgspec.structs import replace

from .cycles import cycle_of
from .ids import closing_ref, is_routed_command
from .state import WalletState

K = TypeVar("K")
V = TypeVar("V")


def cycle_end(cycle_id: str) -> int:
    """The end (exclusive, epoch seconds) of the cycle whose id is its start date."""
    start = datetime.fromisoformat(cycle_id).replace(tzinfo=UTC)
    return cycle_of(int(start.timestamp()), start.day).end


def forget(state: WalletState) -> WalletState:
    """``state`` without the counters and pool figures of the cycles that end by its
    ``retained_since``, nor the keys of routed charges older than it; ``evolve`` calls it
    when a dedup generation is dropped."""
    retained, recurring = state.retained_since, state.recurring
    ends: dict[str, int] = {}
    return replace(
        state,
        tier_used=_without(
            state.tier_used, [k for k in state.tier_used if _ended(k[-1], retained, ends)]
        ),
        pool_used=_closed(state.pool_used, retained, recurring, ends),
        pool_tier=_closed(state.pool_tier, retained, recurring, ends),
        pool_overage=_closed(state.pool_overage, retained, recurring, ends),
        commands=_without(
            state.commands,
            [k for k, ts in state.commands.items() if ts < retained and is_routed_command(k)],
        ),
    )


def _closed(
    figures: Map[tuple[str, str], V], retained: int, recurring: Map[str, str], ends: dict[str, int]
) -> Map[tuple[str, str], V]:
    """``figures`` (keyed ``(pool, cycle)``) without those of closed cycles that end by
    ``retained``."""
    dead = []
    for pool, bucket in figures:
        last = recurring.get(closing_ref(pool))
        if last is not None and bucket <= last and _ended(bucket, retained, ends):
            dead.append((pool, bucket))
    return _without(figures, dead)


def _without(m: Map[K, V], dead: list[K]) -> Map[K, V]:
    if not dead:
        return m
    out = m.mutate()
    for k in dead:
        del out[k]
    return out.finish()


def _ended(cycle_id: str, retained: int, ends: dict[str, int]) -> bool:
    end = ends.get(cycle_id)
    if end is None:
        end = ends[cycle_id] = cycle_end(cycle_id)
    return end <= retained
