"""Retention: a cycle's counters outlive its closing until no record can reach them."""

from __future__ import annotations

from engine.domain.events import CdrRejected, PoolCycleClosed, UsageRated
from engine.domain.rating import tier_counter
from engine.domain.retention import cycle_end

from .builders import (
    DAY,
    MB,
    SIM1,
    Wallets,
    catalog,
    cdr,
    one,
    plan,
    static_pool,
    sub,
    tick,
    tiered,
    top_up,
    ts,
)

JAN, FEB = "2026-01-01", "2026-02-01"


def _run() -> Wallets:
    """SIM1 in a 10 MB static pool, graduated data (10 MB at 0.05, then 0.02 per MB), and a
    dedup window of ten days."""
    rates = {"data": {"EU": tiered(MB, (10 * MB, "0.05"), (None, "0.02"))}}
    cat = catalog(
        plans=[plan(rates=rates)],
        subs=[sub(SIM1, pool="p1")],
        pools=[static_pool("p1", 10 * MB)],
        dedup_window=10 * DAY,
    )
    run = Wallets(cat)
    run.given(top_up("t1", "100", at=ts("2026-01-01T00:00:00Z")))
    # 20 MB in January: 10 from the pool, 10 charged in the first tier
    run.given(cdr("c1", 20 * MB, at=ts("2026-01-05T00:00:00Z")))
    return run


def test_a_record_of_a_closed_cycle_still_reads_its_tier_counter() -> None:
    run = _run()
    closed = run.when(tick("k1", ts("2026-02-02T00:00:00Z")))
    assert one(closed, PoolCycleClosed).cycle == JAN
    assert run.state.tier_used[tier_counter(SIM1, "data", JAN, None)] == 10 * MB
    # a January record after the close is still rated in January: past the first tier
    late = one(run.when(cdr("c2", MB, at=ts("2026-01-30T00:00:00Z"))), UsageRated)
    assert (late.cycle, late.charged_volume, late.amount) == (JAN, MB, 20_000)


def test_a_cycle_is_forgotten_once_its_records_are_refused_as_late() -> None:
    run = _run()
    run.given(tick("k1", ts("2026-02-02T00:00:00Z")))
    run.given(cdr("c2", MB, at=ts("2026-01-30T00:00:00Z")))
    run.given(cdr("c3", MB, at=ts("2026-02-10T00:00:00Z")))
    # retained_since is January 30th: January may still be reached
    assert run.state.retained_since < cycle_end(JAN)
    assert tier_counter(SIM1, "data", JAN, None) in run.state.tier_used
    assert ("p1", JAN) in run.state.pool_used
    run.given(cdr("c4", 20 * MB, at=ts("2026-02-21T00:00:00Z")))
    # a generation dropped: retained_since passed January's end, its figures went
    assert run.state.retained_since >= cycle_end(JAN)
    assert tier_counter(SIM1, "data", JAN, None) not in run.state.tier_used
    assert ("p1", JAN) not in run.state.pool_used
    # February's stay: it is open, and its records are still rated
    assert run.state.tier_used[tier_counter(SIM1, "data", FEB, None)] == 11 * MB
    assert ("p1", FEB) in run.state.pool_used
    # and a January record can no longer be rated: nothing could read what went
    refused = one(run.when(cdr("c5", MB, at=ts("2026-01-31T00:00:00Z"))), CdrRejected)
    assert refused.reason == "late"


def test_a_pool_never_closed_keeps_its_figures() -> None:
    run = _run()
    # no tick: January is never closed, so its pool figures are what closing starts from
    for i, day in enumerate(("2026-01-30", "2026-02-10", "2026-02-21")):
        run.given(cdr(f"d{i}", MB, at=ts(f"{day}T00:00:00Z")))
    assert run.state.retained_since >= cycle_end(JAN)
    assert ("p1", JAN) in run.state.pool_used
    assert tier_counter(SIM1, "data", JAN, None) not in run.state.tier_used
    closed = run.when(tick("k1", ts("2026-02-22T00:00:00Z")))
    assert one(closed, PoolCycleClosed).used == 10 * MB


def test_cycle_end_is_the_next_start_on_the_same_day() -> None:
    assert cycle_end("2026-01-01") == ts("2026-02-01T00:00:00Z")
    assert cycle_end("2026-12-28") == ts("2027-01-28T00:00:00Z")
