"""Pools: how much of a record's volume a shared allowance covers, by pool kind.

- static: a fixed allowance per cycle;
- flexible: an allowance per SIM active in the cycle;
- stacked: add-on bundles, each with its own size and validity, drawn in catalog order;
- adaptive: a ladder of sizes; instead of overage the pool steps up to the tier that fits,
  charging the price difference. Past the largest tier, the rest is rated directly.
"""

from __future__ import annotations

import msgspec
from immutables import Map

from .catalog import Pool
from .cycles import Cycle
from .events import PoolCycleClosed, PoolDraw, PoolStepped
from .state import NEVER, WalletState

PoolFigures = Map[tuple[str, str], int]
"""A wallet's pool figures by ``(pool, bucket)``: a cycle's id, or a stacked pool's bundle."""


class Step(msgspec.Struct, frozen=True, gc=False):
    """An adaptive pool's move to ``tier``, charging ``price`` (the difference)."""

    tier: int
    size: int
    price: int


class Draw(msgspec.Struct, frozen=True, gc=False):
    draws: tuple[PoolDraw, ...]
    volume: int
    step: Step | None = None


NO_DRAW = Draw((), 0)


def covers(pool: Pool, service: str, zone: str) -> bool:
    return pool.service == service and zone in pool.zones


def draw(state: WalletState, pool: Pool, cycle: Cycle, ts: int, volume: int, granted: int) -> Draw:
    """What ``pool`` covers of ``volume`` at ``ts``; never more than what is left in it.

    ``granted`` is a static or flexible pool's allowance at ``ts``
    (``membership.pool_allowance``)."""
    if volume <= 0:
        return NO_DRAW
    if pool.kind == "stacked":
        return _draw_bundles(state, pool, ts, volume)
    used = state.pool_used.get((pool.id, cycle.id), 0)
    step = None
    if pool.kind == "adaptive":
        current = state.pool_tier.get((pool.id, cycle.id), 0)
        allowance = pool.tiers[current].size
        if used + volume > allowance and current + 1 < len(pool.tiers):
            target = next(
                (
                    i
                    for i in range(current + 1, len(pool.tiers))
                    if pool.tiers[i].size >= used + volume
                ),
                len(pool.tiers) - 1,
            )
            price = pool.tiers[target].price - pool.tiers[current].price
            step = Step(target, pool.tiers[target].size, price)
            allowance = pool.tiers[target].size
    else:
        allowance = granted
    take = min(volume, max(0, allowance - used))
    if take == 0 and step is None:
        return NO_DRAW
    draws = (PoolDraw(pool.id, cycle.id, take),) if take else ()
    return Draw(draws, take, step)


def _draw_bundles(state: WalletState, pool: Pool, ts: int, volume: int) -> Draw:
    draws: list[PoolDraw] = []
    left = volume
    for bundle in pool.bundles:
        if left == 0:
            break
        valid_to = NEVER if bundle.valid_to is None else bundle.valid_to
        if not bundle.valid_from <= ts < valid_to:
            continue
        room = bundle.size - state.pool_used.get((pool.id, bundle.id), 0)
        take = min(left, room)
        if take > 0:
            draws.append(PoolDraw(pool.id, bundle.id, take))
            left -= take
    return Draw(tuple(draws), volume - left) if draws else NO_DRAW


def allowance(pool: Pool, state: WalletState, cycle: Cycle, granted: int) -> int:
    """The pool's allowance in ``cycle`` as it stands in ``state`` (for reports); ``granted``
    as for ``draw``."""
    if pool.kind in ("static", "flexible"):
        return granted
    if pool.kind == "adaptive":
        return pool.tiers[state.pool_tier.get((pool.id, cycle.id), 0)].size
    return sum(b.size for b in pool.bundles)


# How the pool figures are counted from the events: ``evolve`` keeps them in the state, and
# whatever reports them after the state forgot a cycle's (``retention``) counts them alike.


def drawn(used: PoolFigures, draws: tuple[PoolDraw, ...]) -> PoolFigures:
    """``used`` (volume by bucket) with a rated record's ``draws`` added."""
    for d in draws:
        bucket = (d.pool_id, d.bucket)
        used = used.set(bucket, used.get(bucket, 0) + d.volume)
    return used


def trued_up(used: PoolFigures, event: PoolCycleClosed) -> PoolFigures:
    """``used`` with the volume a cycle's closing moved into its pool (the true-up)."""
    if not event.credited_volume:
        return used
    key = (event.pool_id, event.cycle)
    return used.set(key, used.get(key, 0) + event.credited_volume)


def stepped(tiers: PoolFigures, event: PoolStepped) -> PoolFigures:
    """``tiers`` (an adaptive pool's tier by cycle) after the pool's step."""
    return tiers.set((event.pool_id, event.cycle), event.tier)
