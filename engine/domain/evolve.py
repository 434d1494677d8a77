"""evolve(state, event) -> state: apply one event. Total, and never validates.

Every rule was checked when the event was decided; applying it again on replay must give
the same state whatever the catalog says today.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from immutables import Map

from .catalog import Subscription
from .events import (
    AutoTopUpRequested,
    Charged,
    Debit,
    DebtWrittenOff,
    Event,
    GrantAdded,
    GrantExpired,
    GrantInfo,
    PlanChanged,
    PoolCycleClosed,
    PoolStepped,
    RatingAdjusted,
    SimAttached,
    SimDetached,
    ThresholdCrossed,
    UsageRated,
    WalletOpened,
    WalletResumed,
    WalletSuspended,
)
from .grants import apply_debits, insert_grant
from .ids import input_key, is_command
from .rating import tier_counter
from .state import EMPTY, Grant, WalletState

RECURRING = frozenset({"mrc", "addon_mrc", "pool_fee"})


def _ts(at: datetime) -> int:
    return int(at.timestamp())


def _with_grant(state: WalletState, info: GrantInfo, remaining: int) -> WalletState:
    seq = state.grant_seq + 1
    if remaining <= 0:
        return _replace(state, grant_seq=seq)
    expires = None if info.expires_at is None else _ts(info.expires_at)
    grant = Grant(info.grant_id, info.kind, remaining, info.priority, expires, seq)
    return _replace(
        state,
        grants=insert_grant(state.grants, grant),
        credit=state.credit + remaining,
        grant_seq=seq,
    )


def _replace(state: WalletState, **changes: object) -> WalletState:
    return msgspec.structs.replace(state, **changes)


def _pay(
    state: WalletState, debits: tuple[Debit, ...], overdraft: int, uncollected: int
) -> dict[str, object]:
    return {
        "grants": apply_debits(state.grants, debits),
        "credit": state.credit - sum(d.amount for d in debits),
        "debt": state.debt + overdraft,
        "uncollected": state.uncollected + uncollected,
    }


_Generations = tuple[Map[str, int], Map[str, int], int, int, int, int]
"""The dedup fields of ``WalletState`` after remembering one key, in field order:
``seen``, ``seen_before``, ``generation_start``, ``before_start``, ``retained_since``,
``watermark``."""


def _remember(state: WalletState, key: str, ts: int) -> _Generations:
    """Add a CDR key to the dedup generations, rotating them as the watermark moves.

    A generation holds the keys rated while the watermark was in ``[start, next start)`` and
    lasts at least one window. Two are kept; when one is dropped, ``retained_since`` becomes
    the start of the oldest one kept. A record's original (if any) was rated when the
    watermark was already at or past the record's own time, so for a record whose time is
    at or after ``retained_since`` the original is still on hand; an older record is
    rejected as late. Pruning therefore never lets a duplicate through.
    """
    window = state.dedup_window
    watermark = state.watermark if state.watermark >= ts else ts
    seen, before, start = state.seen, state.seen_before, state.generation_start
    before_start, retained = state.before_start, state.retained_since
    if start == 0:
        start = watermark
    elif watermark >= start + window:
        if watermark < start + 2 * window:
            if before_start:  # the previous generation is dropped now
                retained = start
            before, before_start = seen, start
        else:  # a jump of two windows: both generations go; every key they held was
            # rated at or before the previous watermark, so only older records are at risk
            before, before_start, retained = EMPTY, 0, state.watermark + 1
        seen = EMPTY
        start = watermark
    return seen.set(key, ts), before, start, before_start, retained, watermark


def usage_rated(
    state: WalletState, event: UsageRated, key: str, ts: int, grants: tuple[Grant, ...]
) -> WalletState:
    """The state after ``event``, given what it takes to apply it.

    ``key`` is the CDR's input key, ``ts`` its instant and ``grants`` the grants after the
    event's debits. ``evolve`` derives them from the event; the decider already holds them
    (it just computed them), and this being the one CDR path worth its speed, it passes them
    in rather than have them worked out again. Either way the state is the same.
    """
    seen, seen_before, generation_start, before_start, retained_since, watermark = _remember(
        state, key, ts
    )
    pool_used = state.pool_used
    for d in event.draws:
        bucket = (d.pool_id, d.bucket)
        pool_used = pool_used.set(bucket, pool_used.get(bucket, 0) + d.volume)
    pool_overage = state.pool_overage
    if event.overage_pool is not None:
        pool_overage = _add_overage(pool_overage, event)
    tier_used = state.tier_used
    if event.charged_volume:
        zone = event.zone if event.tiers_per_zone else None
        counter = tier_counter(event.iccid, event.service, event.cycle, zone)
        tier_used = tier_used.set(counter, tier_used.get(counter, 0) + event.charged_volume)
    credit = state.credit
    for debit in event.debits:
        credit -= debit.amount
    return msgspec.structs.replace(
        state,
        grants=grants,
        credit=credit,
        debt=state.debt + event.overdraft,
        uncollected=state.uncollected + event.uncollected,
        pool_used=pool_used,
        pool_overage=pool_overage,
        tier_used=tier_used,
        seen=seen,
        seen_before=seen_before,
        generation_start=generation_start,
        before_start=before_start,
        retained_since=retained_since,
        watermark=watermark,
    )


Overage = tuple[int, int, tuple[tuple[str, int], ...]]


def _add_overage(
    overage: Map[tuple[str, str], Overage], event: UsageRated
) -> Map[tuple[str, str], Overage]:
    key = (event.overage_pool or "", event.cycle)
    volume, amount, lines = overage.get(key, (0, 0, ()))
    by_provider = dict(lines)
    for line in event.splits:
        by_provider[line.provider] = by_provider.get(line.provider, 0) + line.amount
    merged = (volume + event.charged_volume, amount + event.amount, tuple(by_provider.items()))
    return overage.set(key, merged)


def pool_cycle_closed(state: WalletState, event: PoolCycleClosed) -> WalletState:
    key = (event.pool_id, event.cycle)
    s = state
    if event.credit is not None:
        s = _with_grant(s, event.credit, event.credit.amount - event.debt_repaid)
        s = _replace(s, debt=s.debt - event.debt_repaid)
    pool_used = s.pool_used
    if event.credited_volume:
        pool_used = pool_used.set(key, pool_used.get(key, 0) + event.credited_volume)
    return _replace(
        s,
        pool_used=pool_used,
        pool_overage=s.pool_overage.delete(key) if key in s.pool_overage else s.pool_overage,
        recurring=s.recurring.set(closing_ref(event.pool_id), event.cycle),
    )


def closing_ref(pool_id: str) -> str:
    """The ``recurring`` entry naming the last cycle of a pool that closed."""
    return f"close:{pool_id}"


def charged(state: WalletState, event: Charged, grants: tuple[Grant, ...]) -> WalletState:
    """The state after ``event``, ``grants`` being the grants after its debits (as for
    ``usage_rated``: the decider passes the ones it computed when settling the charge)."""
    recurring, commands = state.recurring, state.commands
    if event.kind in RECURRING and event.cycle is not None:
        recurring = recurring.set(event.ref, event.cycle)
    elif event.kind == "routed_usage":
        commands = commands.set(input_key(event.id), _ts(event.at))
    credit = state.credit
    for debit in event.debits:
        credit -= debit.amount
    return msgspec.structs.replace(
        state,
        grants=grants,
        credit=credit,
        debt=state.debt + event.overdraft,
        uncollected=state.uncollected + event.uncollected,
        recurring=recurring,
        commands=commands,
    )


def evolve(state: WalletState, event: Event) -> WalletState:
    """The state after ``event``."""
    match event:
        case UsageRated():
            grants = apply_debits(state.grants, event.debits)
            return usage_rated(state, event, input_key(event.id), _ts(event.at), grants)
        case Charged():
            return charged(state, event, apply_debits(state.grants, event.debits))
        case RatingAdjusted():
            s = _replace(state, **_pay(state, event.debits, event.overdraft, event.uncollected))
            if event.credit is not None:
                s = _with_grant(s, event.credit, event.credit.amount - event.debt_repaid)
                s = _replace(s, debt=s.debt - event.debt_repaid)
            return _replace(s, commands=_done(s, event))
        case DebtWrittenOff():
            return _replace(state, debt=state.debt - event.amount, commands=_done(state, event))
        case GrantExpired():
            grants = tuple(g for g in state.grants if g.id != event.grant_id)
            return _replace(state, grants=grants, credit=state.credit - event.amount)
        case GrantAdded():
            s = _with_grant(state, event.grant, event.grant.amount - event.debt_repaid)
            changes = {
                "debt": s.debt - event.debt_repaid,
                "fired": s.fired - frozenset(event.rearmed),
                "auto_top_up_fired": s.auto_top_up_fired and not event.auto_top_up_rearmed,
            }
            if is_command(event.id):
                changes["commands"] = s.commands.set(input_key(event.id), _ts(event.at))
            if event.voucher is not None:
                changes["vouchers"] = s.vouchers | {event.voucher}
            return _replace(s, **changes)
        case WalletOpened():
            s = _replace(state, opened=True, dedup_window=event.dedup_window)
            for info in event.grants:
                s = _with_grant(s, info, info.amount)
            return s
        case PoolCycleClosed():
            return pool_cycle_closed(state, event)
        case PoolStepped():
            return _replace(
                state, pool_tier=state.pool_tier.set((event.pool_id, event.cycle), event.tier)
            )
        case ThresholdCrossed():
            return _replace(state, fired=state.fired | {event.level})
        case AutoTopUpRequested():
            return _replace(state, auto_top_up_fired=True)
        case WalletSuspended():
            return _replace(state, suspended=True)
        case WalletResumed():
            return _replace(state, suspended=False)
        case SimAttached():
            past, catalog_until = _close_stint(state, event.iccid, _ts(event.at))
            sub = Subscription(
                iccid=event.iccid,
                wallet=event.wallet_id,
                plan=event.plan,
                pool=event.pool,
                active_from=_ts(event.at),
                addons=event.addons,
            )
            return _replace(
                state,
                attached=state.attached.set(event.iccid, sub),
                past=past,
                catalog_until=catalog_until,
                detached=_without(state.detached, event.iccid),
                plan_changes=_without(state.plan_changes, event.iccid),
                commands=_done(state, event),
            )
        case SimDetached():
            return _replace(
                state,
                detached=state.detached.set(event.iccid, _ts(event.at)),
                commands=_done(state, event),
            )
        case PlanChanged():
            ts = _ts(event.at)
            changes_of = state.plan_changes.get(event.iccid, ())
            merged = tuple(sorted((*changes_of, (ts, event.plan)), key=lambda c: c[0]))
            return _replace(
                state,
                plan_changes=state.plan_changes.set(event.iccid, merged),
                commands=_done(state, event),
            )
        case _:
            # Rejections and network actions record facts but change nothing here.
            return state


def _close_stint(
    state: WalletState, iccid: str, ts: int
) -> tuple[Map[str, tuple[Subscription, ...]], Map[str, int]]:
    """Keep the stint an attachment ends: the earlier attachment's, or the catalog's (whose
    end is all that is kept: the catalog holds the rest)."""
    left = state.detached.get(iccid)
    end = ts if left is None else min(left, ts)
    before = state.attached.get(iccid)
    if before is None:
        return state.past, state.catalog_until.set(iccid, end)
    if before.active_to is None or before.active_to > end:
        before = msgspec.structs.replace(before, active_to=end)
    return state.past.set(iccid, (*state.past.get(iccid, ()), before)), state.catalog_until


def _done(state: WalletState, event: Event) -> Map[str, int]:
    """Remember the command an event answers, so a retry of it is a no-op."""
    if not is_command(event.id):
        return state.commands
    return state.commands.set(input_key(event.id), _ts(event.at))


def _without(m: Map[str, Any], key: str) -> Map[str, Any]:
    return m.delete(key) if key in m else m


def fold(state: WalletState, events: list[Event]) -> WalletState:
    for event in events:
        state = evolve(state, event)
    return state
