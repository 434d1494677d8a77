"""The clock's recurring charges: MRCs, add-on MRCs and pool fees, each exactly once per
cycle, missed cycles caught up (at most ``MAX_CATCH_UP`` of them)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.domain.events import Charged
from engine.domain.recurring import MAX_CATCH_UP

from .builders import (
    DAY,
    SIM1,
    SIM2,
    T0,
    Wallets,
    addon,
    catalog,
    of,
    plan,
    sub,
    tick,
    ts,
    types,
    version,
    wallet,
)

MRC_PLAN = plan(mrc="2", addons=[addon("gps", "0.5"), addon("sms-pack", "1")])


def mrc_wallet(**kw: object) -> Wallets:
    subs = [sub(SIM1, addons=("gps",)), sub(SIM2, addons=("gps", "sms-pack"))]
    return Wallets(catalog(plans=[MRC_PLAN], subs=subs, wallets=[wallet(**kw)]))  # type: ignore[arg-type]


def charges(events: Iterable[object]) -> list[tuple[str, str, int, str]]:
    """(kind, ref, amount, cycle) of each recurring charge."""
    return [(c.kind, c.ref, c.amount, c.cycle or "") for c in of(events, Charged)]


def test_tick_charges_each_mrc_once_per_cycle() -> None:
    run = mrc_wallet()
    events = run.when(tick("t1", T0))
    assert charges(events) == [
        ("mrc", SIM1, 2_000_000, "2026-01-01"),
        ("addon_mrc", f"{SIM1}/gps", 500_000, "2026-01-01"),
        ("mrc", SIM2, 2_000_000, "2026-01-01"),
        ("addon_mrc", f"{SIM2}/gps", 500_000, "2026-01-01"),
        ("addon_mrc", f"{SIM2}/sms-pack", 1_000_000, "2026-01-01"),
    ]
    assert all(sum(s.amount for s in c.splits) == c.amount for c in of(events, Charged))
    # ticks later in the same cycle (another command id or the same) charge nothing
    assert run.when(tick("t2", T0 + 10 * DAY)) == []
    assert run.when(tick("t1", T0 + 20 * DAY)) == []
    # the next cycle charges once more
    assert len(charges(run.when(tick("t3", ts("2026-02-01T00:00:00Z"))))) == 5
    assert run.balance == 100_000_000 - 2 * 6_000_000


def test_tick_catches_up_missed_cycles() -> None:
    run = mrc_wallet()
    run.given(tick("t1", T0))
    events = run.when(tick("t2", ts("2026-04-15T00:00:00Z")))
    assert sorted({c[3] for c in charges(events)}) == ["2026-02-01", "2026-03-01", "2026-04-01"]
    assert len(charges(events)) == 15


def test_one_tick_catches_each_sim_up_from_its_own_last_cycle() -> None:
    # SIM2 joins in March, so January's tick passes it by: never charged, it starts with
    # the tick's cycle, while SIM1 catches up from January, in the same tick.
    subs = [sub(SIM1), sub(SIM2, active_from=ts("2026-03-10T00:00:00Z"))]
    run = Wallets(catalog(plans=[plan(mrc="2")], subs=subs))
    run.given(tick("t1", T0))
    events = run.when(tick("t2", ts("2026-04-15T00:00:00Z")))
    assert [(c[1], c[3]) for c in charges(events)] == [
        (SIM1, "2026-02-01"),
        (SIM1, "2026-03-01"),
        (SIM1, "2026-04-01"),
        (SIM2, "2026-04-01"),
    ]


def test_cycles_follow_the_wallet_anchor_day() -> None:
    run = mrc_wallet(anchor=15)
    assert {c[3] for c in charges(run.when(tick("t1", ts("2026-01-14T23:59:59Z"))))} == {
        "2025-12-15"
    }
    assert {c[3] for c in charges(run.when(tick("t2", ts("2026-01-15T00:00:00Z"))))} == {
        "2026-01-15"
    }


def test_tick_takes_the_mrc_of_the_version_in_force_at_the_cycle_start() -> None:
    march = ts("2026-03-01T00:00:00Z")
    versions = plan(
        "basic", version(version=1, mrc="2"), version(version=2, effective_from=march, mrc="3")
    )
    run = Wallets(catalog(plans=[versions]))
    run.given(tick("t1", T0))
    events = run.when(tick("t2", march + DAY))
    assert [(c[2], c[3]) for c in charges(events)] == [
        (2_000_000, "2026-02-01"),
        (3_000_000, "2026-03-01"),
    ]


def test_tick_skips_sims_not_active_in_the_cycle() -> None:
    feb = ts("2026-02-01T00:00:00Z")
    subs = [sub(SIM1), sub(SIM2, active_from=feb + 5 * DAY)]
    run = Wallets(catalog(plans=[plan(mrc="2")], subs=subs))
    assert [c[1] for c in charges(run.when(tick("t1", T0)))] == [SIM1]
    assert [c[1] for c in charges(run.when(tick("t2", feb)))] == [SIM1, SIM2]


def test_a_tick_with_nothing_due_is_a_no_op() -> None:
    run = Wallets(catalog())
    assert types(run.when(tick("t1", T0))) == ["WalletOpened"]
    assert run.when(tick("t2", T0 + 1)) == []


def test_a_long_silence_catches_up_the_last_cycles_only() -> None:
    run = mrc_wallet()
    run.given(tick("t1", T0))
    events = run.when(tick("t2", ts("2030-01-15T00:00:00Z")))  # 48 cycles later
    cycles = sorted({c[3] for c in charges(events)})
    assert len(cycles) == MAX_CATCH_UP
    assert cycles[-1] == "2030-01-01"
    assert len(charges(events)) == 5 * MAX_CATCH_UP
