"""Pools true up: a flexible pool counts every SIM that was in it during the cycle, however it
arrived and wherever it went; the cycle closes with ``PoolCycleClosed``, and overage charged
before the allowance grew comes back. Figures are worked by hand at 1 EUR per MB."""

from __future__ import annotations

import msgspec

from engine.domain import Event, fold, initial_state
from engine.domain.catalog import Bundle
from engine.domain.closing import close_pools
from engine.domain.draft import Draft
from engine.domain.events import (
    GrantAdded,
    PoolCycleClosed,
    SimAttached,
    SplitLine,
    UsageRated,
    WalletResumed,
)
from engine.domain.recurring import MAX_CATCH_UP

from .builders import (
    MB,
    SIM1,
    SIM2,
    T0,
    Wallets,
    attach,
    catalog,
    cdr,
    detach,
    dt,
    flexible_pool,
    of,
    one,
    opening,
    plan,
    rate,
    stacked_pool,
    static_pool,
    sub,
    tick,
    top_up,
    ts,
    types,
    wallet,
)

EUR_PER_MB = plan(rates={"data": {"EU": rate("1", MB)}})
JAN12 = ts("2026-01-12T00:00:00Z")
JAN15 = ts("2026-01-15T00:00:00Z")
FEB1 = ts("2026-02-01T00:00:00Z")


def _used(run: Wallets, cdr_id: str, volume: int, at: int, iccid: str = SIM1) -> UsageRated:
    return one(run.when(cdr(cdr_id, volume, at=at, iccid=iccid)), UsageRated)


def _attached_by_command() -> Wallets:
    cat = catalog(plans=[EUR_PER_MB], pools=[flexible_pool(per_sim=5 * MB)], subs=[sub(pool="p1")])
    return Wallets(cat).given(cdr("c0", 0, at=T0 - 1))


def test_overage_before_a_sim_arrived_by_command_is_credited_back_at_the_close() -> None:
    run = _attached_by_command()
    # 5 MB allowance (1 SIM): 8 MB leave 3 MB of overage, 3.00 EUR
    first = _used(run, "c1", 8 * MB, T0)
    assert (first.pooled_volume, first.amount, first.overage_pool) == (5 * MB, 3_000_000, "p1")
    run.given(attach("a1", SIM2, at=JAN12, pool="p1"))
    # 2 SIMs from the 12th: 10 MB; SIM2's 1 MB fits (6 MB used)
    assert _used(run, "c2", MB, JAN15, SIM2).pooled_volume == MB
    events = run.when(tick("t1", FEB1))
    closed = one(events, PoolCycleClosed)
    # 4 MB of room left at the close: the 3 MB of overage move in, 3.00 EUR come back
    assert (closed.allowance, closed.used, closed.overage, closed.overage_amount) == (
        10 * MB,
        9 * MB,
        0,
        0,
    )
    assert closed.credited_volume == 3 * MB
    assert closed.credit is not None and closed.credit.amount == 3_000_000
    assert closed.splits == (
        SplitLine("op", -2_100_000),
        SplitLine("platform", -600_000),
        SplitLine("reseller", -300_000),
    )
    assert run.balance == 100_000_000


def test_a_sim_the_catalog_activates_mid_cycle_costs_the_same_as_one_attached() -> None:
    subs = [sub(pool="p1"), sub(SIM2, pool="p1", active_from=JAN12)]
    cat = catalog(plans=[EUR_PER_MB], pools=[flexible_pool(per_sim=5 * MB)], subs=subs)
    listed = Wallets(cat).given(cdr("c0", 0, at=T0 - 1))
    inputs = [cdr("c1", 8 * MB, at=T0), cdr("c2", MB, at=JAN15, iccid=SIM2), tick("t1", FEB1)]
    by_command = _attached_by_command()
    listed.given(*inputs)
    by_command.given(inputs[0], attach("a1", SIM2, at=JAN12, pool="p1"), *inputs[1:])

    def bare(events: list[object]) -> list[bytes]:
        # the same decisions, whatever the ids of the inputs that led to them
        out = []
        for e in events:
            if isinstance(e, SimAttached):
                continue
            fields = msgspec.structs.asdict(e)  # type: ignore[call-overload]
            fields.pop("id")
            if isinstance(e, PoolCycleClosed) and e.credit is not None:
                fields["credit"] = e.credit.amount
            out.append(msgspec.json.encode(fields))
        return out

    assert bare(listed.history) == bare(by_command.history)
    assert listed.balance == by_command.balance == 100_000_000


def test_a_sim_moved_to_another_pool_counts_in_both_for_the_cycle() -> None:
    pools = [flexible_pool("p1", per_sim=5 * MB), flexible_pool("p2", per_sim=5 * MB)]
    subs = [sub(pool="p1"), sub(SIM2, pool="p1")]
    run = Wallets(catalog(plans=[EUR_PER_MB], pools=pools, subs=subs))
    run.given(detach("d1", SIM2, at=T0), attach("a1", SIM2, at=T0 + 60, pool="p2"))
    # p1 keeps SIM2 for January (10 MB), p2 has it too (5 MB)
    assert _used(run, "c1", 10 * MB, JAN12).pooled_volume == 10 * MB
    assert _used(run, "c2", 5 * MB, JAN12, SIM2).pooled_volume == 5 * MB
    # moved back to p1 later: p2 still counts it, p1 counts it once
    run.given(detach("d2", SIM2, at=JAN15), attach("a2", SIM2, at=JAN15 + 60, pool="p1"))
    closed = of(run.when(tick("t1", FEB1)), PoolCycleClosed)
    assert [(c.pool_id, c.allowance, c.used) for c in closed] == [
        ("p1", 10 * MB, 10 * MB),
        ("p2", 5 * MB, 5 * MB),
    ]
    # in February SIM2 is in p1 only
    assert _used(run, "c3", 11 * MB, FEB1 + 60).pooled_volume == 10 * MB


def test_overage_that_still_does_not_fit_is_reported_not_credited() -> None:
    run = _attached_by_command()
    run.given(cdr("c1", 12 * MB, at=T0))
    closed = one(run.when(tick("t1", FEB1)), PoolCycleClosed)
    assert (closed.allowance, closed.used, closed.overage, closed.overage_amount) == (
        5 * MB,
        5 * MB,
        7 * MB,
        7_000_000,
    )
    assert (closed.credited_volume, closed.credit, closed.splits) == (0, None, ())


def test_a_cycle_closes_once_and_then_every_cycle_after_it() -> None:
    run = _attached_by_command()
    run.given(cdr("c1", MB, at=T0))
    assert len(of(run.when(tick("t0", T0 + 3600)), PoolCycleClosed)) == 0  # not over yet
    assert [c.cycle for c in of(run.when(tick("t1", FEB1)), PoolCycleClosed)] == ["2026-01-01"]
    assert of(run.when(tick("t2", FEB1 + 3600)), PoolCycleClosed) == []
    # two months later: February and March close, in order
    events = run.when(tick("t3", ts("2026-04-02T00:00:00Z")))
    assert [c.cycle for c in of(events, PoolCycleClosed)] == ["2026-02-01", "2026-03-01"]


def test_a_true_up_repays_debt_first_and_may_resume_the_wallet() -> None:
    cat = catalog(
        plans=[EUR_PER_MB],
        pools=[flexible_pool(per_sim=5 * MB)],
        subs=[sub(pool="p1")],
        wallets=[wallet(opening=[opening("2")], overdraft="5", suspend_at=0, resume_at=500_000)],
    )
    run = Wallets(cat)
    # 5 MB pooled, 3 MB at 3.00 EUR on 2.00: -1.00, suspended
    run.given(cdr("c1", 8 * MB, at=T0))
    assert (run.balance, run.state.suspended) == (-1_000_000, True)
    run.given(attach("a1", SIM2, at=JAN12, pool="p1"))
    events = run.when(tick("t1", FEB1))
    closed = one(events, PoolCycleClosed)
    assert (closed.credit.amount if closed.credit else 0, closed.debt_repaid) == (
        3_000_000,
        1_000_000,
    )
    assert types(events)[-2:] == ["WalletResumed", "SimsUnbarred"]
    assert one(events, WalletResumed).balance == 2_000_000
    assert (run.balance, run.state.debt) == (2_000_000, 0)


def test_static_and_adaptive_pools_close_with_their_figures() -> None:
    run = Wallets(
        catalog(plans=[EUR_PER_MB], pools=[static_pool(allowance=10 * MB)], subs=[sub(pool="p1")])
    )
    run.given(cdr("c1", 4 * MB, at=T0))
    closed = one(run.when(tick("t1", FEB1)), PoolCycleClosed)
    assert (closed.kind, closed.allowance, closed.used, closed.overage) == (
        "static",
        10 * MB,
        4 * MB,
        0,
    )


def test_daily_pro_rated_flexible_allowance_counts_the_days_each_sim_was_in() -> None:
    pool = flexible_pool(per_sim=10 * MB, prorate_allowance="daily")
    subs = [sub(pool="p1"), sub(SIM2, pool="p1", active_from=ts("2026-01-22T12:00:00Z"))]
    run = Wallets(catalog(plans=[EUR_PER_MB], pools=[pool], subs=subs))
    # SIM1: 31 days; SIM2 from the 22nd (counted) to the 31st: 10 days. 41 SIM-days of 31:
    # 10 MB × 41 / 31 = 429,916,160 / 31 = 13,868,263.2 bytes, rounded half-up: 13,868,263
    # Before SIM2 arrived only SIM1's 31 days counted: 10 MB, so 20 MB on the 20th leave
    # 10 MB (10.00 EUR) of overage.
    run.given(cdr("c1", 20 * MB, at=ts("2026-01-20T00:00:00Z")))
    closed = one(run.when(tick("t1", FEB1)), PoolCycleClosed)
    assert (closed.allowance, closed.used) == (13_868_263, 13_868_263)
    # 3,382,503 bytes of it fit at the close: 10.00 EUR × 3,382,503 / 10,485,760
    # = 3.2258060... EUR, rounded half-up to 3,225,806 micro-units
    assert (closed.overage, closed.credited_volume) == (20 * MB - 13_868_263, 3_382_503)
    assert closed.credit is not None and closed.credit.amount == 3_225_806
    assert closed.overage_amount == 10_000_000 - 3_225_806


def test_daily_pro_rated_static_allowance_counts_the_days_the_pool_had_a_sim() -> None:
    pool = static_pool(allowance=31 * MB, prorate_allowance="daily")
    # the only SIM arrives on the 11th: 21 of 31 days, 21 MB
    run = Wallets(
        catalog(
            plans=[EUR_PER_MB],
            pools=[pool],
            subs=[sub(pool="p1", active_from=ts("2026-01-11T08:00:00Z"))],
        )
    )
    rated = _used(run, "c1", 30 * MB, ts("2026-01-20T00:00:00Z"))
    assert (rated.pooled_volume, rated.amount) == (21 * MB, 9_000_000)


def test_a_top_up_then_a_true_up_keeps_every_credit() -> None:
    run = _attached_by_command()
    run.given(cdr("c1", 8 * MB, at=T0), top_up("u1", "1", at=T0 + 10))
    run.given(attach("a1", SIM2, at=JAN12, pool="p1"))
    events = run.when(tick("t1", FEB1))
    assert of(events, GrantAdded) == []  # the credit travels on the close itself
    assert run.balance == 101_000_000


def test_events_stored_before_true_ups_still_decode_and_fold() -> None:
    # a UsageRated of before (no overage_pool) counts no overage; a close needs no field
    old = (
        b'{"type":"UsageRated","id":"cdr:c1#1","wallet_id":"w1","at":"2026-01-05T00:00:00Z",'
        b'"cdr_id":"c1","iccid":"8900000000000000001","service":"data","zone":"EU",'
        b'"volume":8388608,"rated_volume":8388608,"pooled_volume":5242880,'
        b'"charged_volume":3145728,"amount":3000000,"plan":"basic","plan_version":1,'
        b'"cycle":"2026-01-01","payer":"w1","overdraft":3000000}'
    )
    event = msgspec.json.decode(old, type=Event)
    assert isinstance(event, UsageRated) and event.overage_pool is None
    state = fold(initial_state("w1"), [event])
    assert not state.pool_overage and state.debt == 3_000_000
    closed = msgspec.json.decode(
        b'{"type":"PoolCycleClosed","id":"cmd:t#0","wallet_id":"w1","at":"2026-02-01T00:00:00Z"}',
        type=Event,
    )
    assert isinstance(closed, PoolCycleClosed) and closed.credit is None


def test_a_tick_that_bars_does_not_unbar_for_its_true_up() -> None:
    mrc_plan = plan(rates={"data": {"EU": rate("10", MB)}}, mrc="30")
    cat = catalog(
        plans=[mrc_plan],
        pools=[flexible_pool(per_sim=5 * MB)],
        subs=[sub(pool="p1")],
        wallets=[wallet(opening=[opening("100")], overdraft="50", suspend_at=0, resume_at=1)],
    )
    run = Wallets(cat).given(tick("t0", T0 - 3600))  # January's MRC: 30.00, 70.00 left
    # 3 MB over the pool at 10.00: 40.00 left; SIM2 arrives
    run.given(cdr("c1", 8 * MB, at=T0), attach("a1", SIM2, at=JAN12, pool="p1"))
    # February's MRCs (2 × 30.00) leave -20.00: suspended and barred. The true-up's 30.00
    # would leave 10.00, above resume_at, but this decision barred: it stays suspended
    events = run.when(tick("t1", FEB1))
    assert "SimsBarred" in types(events) and "SimsUnbarred" not in types(events)
    closed = one(events, PoolCycleClosed)
    assert closed.credit is not None and closed.credit.amount == 30_000_000
    assert (run.balance, run.state.suspended) == (10_000_000, True)
    # the next credit resumes it (all or nothing, no fees here)
    assert "WalletResumed" in types(run.when(top_up("u1", "1", at=FEB1 + 60)))


# -- close_pools on its own ----------------------------------------------------------------


def _closing(run: Wallets) -> Draft:
    return Draft(run.state, "k", run.catalog, run.catalog.wallets["w1"])


def test_after_a_long_silence_only_the_last_cycles_close() -> None:
    run = _attached_by_command()
    run.given(cdr("c1", MB, at=T0))
    d = _closing(run)
    later = ts("2030-01-15T00:00:00Z")
    close_pools(d, dt(later), later)
    closed = of(d.events, PoolCycleClosed)
    # The window of MAX_CATCH_UP cycles ends with the one still open, which does not close.
    assert len(closed) == MAX_CATCH_UP - 1
    assert (closed[0].cycle, closed[-1].cycle) == ("2028-02-01", "2029-12-01")


def test_a_pool_never_drawn_from_and_a_stacked_pool_never_close() -> None:
    stacked = stacked_pool("s1", bundles=[Bundle("b1", 10 * MB, 0)])
    cat = catalog(plans=[EUR_PER_MB], pools=[static_pool(), stacked], subs=[sub(pool="s1")])
    run = Wallets(cat).given(cdr("c1", MB, at=T0))
    d = _closing(run)
    close_pools(d, dt(FEB1), FEB1)
    assert d.events == []
