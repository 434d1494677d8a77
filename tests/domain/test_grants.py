"""Grants: burn order, lazy expiry, the overdraft and what is left uncollected."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.events import (
    Charged,
    CommandRejected,
    DebtWrittenOff,
    GrantAdded,
    GrantExpired,
    ThresholdCrossed,
    UsageRated,
    WalletOpened,
)
from engine.domain.grants import Settlement, apply_debits, expired, settle
from engine.domain.state import Grant, initial_state

from .builders import (
    MB,
    T0,
    Wallets,
    apply_charge,
    catalog,
    cdr,
    debits,
    dt,
    of,
    one,
    opening,
    paid,
    plan,
    rate,
    tick,
    top_up,
    types,
    wallet,
    write_off,
)

# 1 EUR per MB makes amounts easy to read: n MB cost n EUR.
EUR_PER_MB = plan(rates={"data": {"EU": rate("1", MB)}})


def given_wallet(*grants: object, overdraft: str = "0") -> Wallets:
    cat = catalog(plans=[EUR_PER_MB], wallets=[wallet(opening=grants, overdraft=overdraft)])  # type: ignore[arg-type]
    return Wallets(cat)


def test_first_decision_opens_the_wallet_with_its_opening_grants() -> None:
    run = given_wallet(opening("5", priority=10), opening("7", expires_at=T0 + 100))
    events = run.when(cdr("c1", 0))
    opened = events[0]
    assert isinstance(opened, WalletOpened)
    assert opened.id == "open:w1#0"
    assert [(g.grant_id, g.amount, g.priority) for g in opened.grants] == [
        ("open:w1/0", 5_000_000, 10),
        ("open:w1/1", 7_000_000, 40),
    ]
    assert events[1].id == "cdr:c1#1"
    assert run.balance == 12_000_000
    # and only the first decision opens it
    assert not of(run.when(cdr("c2", 0, at=T0 + 1)), WalletOpened)


def test_burn_order_priority_then_earliest_expiry_then_oldest() -> None:
    run = given_wallet(
        opening("1", priority=40),  # open:w1/0  paid, oldest
        opening("1", priority=40, expires_at=T0 + 10 * 86400),  # /1 paid, expires later
        opening("1", priority=40, expires_at=T0 + 5 * 86400),  # /2 paid, expires first
        opening("1", priority=10),  # /3 promotion: burns first
        opening("1", priority=40),  # /4 paid, newest without expiry
    )
    rated = one(run.when(cdr("c1", 5 * MB)), UsageRated)
    assert debits(rated) == [
        ("open:w1/3", 1_000_000),
        ("open:w1/2", 1_000_000),
        ("open:w1/1", 1_000_000),
        ("open:w1/0", 1_000_000),
        ("open:w1/4", 1_000_000),
    ]


def test_a_charge_takes_partly_from_the_next_grant() -> None:
    run = given_wallet(opening("1", priority=10), opening("5"))
    rated = one(run.when(cdr("c1", 3 * MB)), UsageRated)
    assert debits(rated) == [("open:w1/0", 1_000_000), ("open:w1/1", 2_000_000)]
    assert [(g.id, g.remaining) for g in run.state.grants] == [("open:w1/1", 3_000_000)]


def test_top_up_grant_joins_the_burn_order_by_priority() -> None:
    run = given_wallet(opening("10"))
    run.given(top_up("promo", "2", kind="promotion"))  # priority 10 by default
    rated = one(run.when(cdr("c1", 3 * MB, at=T0 + 1)), UsageRated)
    assert debits(rated) == [("cmd:promo#1", 2_000_000), ("open:w1/0", 1_000_000)]


def test_expired_remainder_becomes_grant_expired_at_the_next_input() -> None:
    expiry = T0 + 86400
    run = given_wallet(opening("2", priority=10, expires_at=expiry), opening("10"))
    run.given(cdr("c1", MB))  # 1 EUR from the expiring grant
    # an input before the expiry does not expire it
    assert not of(run.when(cdr("c2", 0, at=expiry - 1)), GrantExpired)
    # the first input at the expiry does, before anything else
    events = run.when(cdr("c3", MB, at=expiry))
    assert types(events) == ["GrantExpired", "UsageRated"]
    gone = one(events, GrantExpired)
    assert (gone.grant_id, gone.amount, gone.id) == ("open:w1/0", 1_000_000, "cdr:c3#0")
    # and the usage is paid by the next grant, never by the expired one
    assert debits(one(events, UsageRated)) == [("open:w1/1", 1_000_000)]
    assert run.balance == 9_000_000


def test_commands_expire_grants_too() -> None:
    expiry = T0 + 86400
    run = given_wallet(opening("2", expires_at=expiry), opening("10"))
    run.given(cdr("c1", 0))
    events = run.when(tick("t1", expiry + 5))
    assert [(e.grant_id, e.amount) for e in of(events, GrantExpired)] == [("open:w1/0", 2_000_000)]
    # expired once: a later input does not expire it again
    assert not of(run.when(tick("t2", expiry + 10)), GrantExpired)


def test_usage_beyond_the_overdraft_limit_is_owed_not_written_off() -> None:
    run = given_wallet(opening("1"), overdraft="2")
    rated = one(run.when(cdr("c1", 5 * MB)), UsageRated)
    # 5 EUR: 1 from the grant, 4 owed (2 of them past the limit: the limit suspends, it does
    # not forgive)
    assert (debits(rated), rated.overdraft, rated.uncollected) == (
        [("open:w1/0", 1_000_000)],
        4_000_000,
        0,
    )
    assert paid(rated) == rated.amount
    assert (run.state.debt, run.state.uncollected, run.balance) == (4_000_000, 0, -4_000_000)
    more = one(run.when(cdr("c2", MB, at=T0 + 1)), UsageRated)
    assert (more.debits, more.overdraft, more.uncollected) == ((), 1_000_000, 0)
    # a top-up repays all of it first, and says how much
    added = one(run.when(top_up("t1", "6", at=T0 + 2)), GrantAdded)
    assert added.debt_repaid == 5_000_000
    assert (run.state.debt, run.balance) == (0, 1_000_000)


def test_debt_is_written_off_only_by_an_explicit_command_with_a_reason() -> None:
    run = given_wallet(opening("1"), overdraft="2")
    run.given(cdr("c1", 5 * MB))  # 4 EUR owed
    part = one(run.when(write_off("w1", "1.5", "goodwill", at=T0 + 1)), DebtWrittenOff)
    assert (part.amount, part.reason, part.id) == (1_500_000, "goodwill", "cmd:w1#0")
    assert (run.state.debt, run.balance) == (2_500_000, -2_500_000)
    rest = one(run.when(write_off("w2", None, "customer gone", at=T0 + 2)), DebtWrittenOff)
    assert rest.amount == 2_500_000
    assert (run.state.debt, run.balance) == (0, 0)
    # retried: a no-op; with nothing owed, or more than is owed: rejected
    assert run.when(write_off("w2", None, "customer gone", at=T0 + 3)) == []
    assert one(run.when(write_off("w3", None, "x", at=T0 + 4)), CommandRejected).reason == "no_debt"
    run.given(cdr("c2", MB, at=T0 + 5))
    too_much = one(run.when(write_off("w4", "2", "x", at=T0 + 6)), CommandRejected)
    assert too_much.reason == "invalid_amount"


def test_top_up_repays_the_overdraft_first() -> None:
    run = given_wallet(opening("0"), overdraft="3")
    run.given(cdr("c1", 2 * MB))
    added = one(run.when(top_up("t1", "5", at=T0 + 1)), GrantAdded)
    assert (added.grant.amount, added.debt_repaid) == (5_000_000, 2_000_000)
    assert (run.state.debt, run.state.credit, run.balance) == (0, 3_000_000, 3_000_000)


def test_routed_charge_settles_like_any_charge() -> None:
    run = given_wallet(opening("1"), overdraft="1")
    charged = one(run.when(apply_charge("r1", 3_000_000)), Charged)
    assert (charged.kind, charged.overdraft, charged.uncollected, charged.splits) == (
        "routed_usage",
        2_000_000,
        0,
        (),
    )
    assert paid(charged) == 3_000_000
    # a retried routed charge is a no-op: paid once, and nothing else decided
    before = run.state
    assert run.when(apply_charge("r1", 3_000_000, at=T0 + 1)) == []
    assert run.state == before
    rejected = one(run.when(apply_charge("r2", -5)), CommandRejected)
    assert (rejected.reason, rejected.id) == ("invalid_amount", "cmd:r2#invalid_amount")


def test_settle_skips_a_grant_expired_at_the_charge_instant() -> None:
    state = initial_state("w1")
    grants = (
        Grant("a", "promotion", 5, 10, T0, 1),
        Grant("b", "top_up", 5, 40, None, 2),
    )
    state = state.__class__(wallet_id="w1", grants=grants, credit=10)
    assert settle(state, 3, T0 - 1).debits[0].grant_id == "a"
    assert [d.grant_id for d in settle(state, 3, T0).debits] == ["b"]
    assert [g.id for g in expired(state, T0)] == ["a"]
    assert expired(state, T0 - 1) == []


def test_an_expiry_is_dated_at_its_instant_however_late_the_next_input() -> None:
    expiry = T0 + 86400
    run = given_wallet(opening("2", priority=10, expires_at=expiry), opening("10"))
    run.given(cdr("c1", 0))
    events = run.when(cdr("c2", MB, at=expiry + 7 * 86400))  # a week later
    gone = one(events, GrantExpired)
    assert gone.at == dt(expiry)
    assert one(events, UsageRated).at == dt(expiry + 7 * 86400)


def test_an_expiry_runs_the_thresholds_and_suspension_on_what_it_leaves() -> None:
    expiry = T0 + 86400
    cat = catalog(
        plans=[EUR_PER_MB],
        wallets=[
            wallet(
                opening=[opening("8", expires_at=expiry), opening("1")],
                thresholds=["2"],
                suspend_at=1_000_000,
                resume_at=1_000_000,
            )
        ],
    )
    run = Wallets(cat)
    run.given(cdr("c1", 0))
    # a tick after the expiry: 8 EUR of breakage leave 1 EUR, at the suspension level
    events = run.when(tick("t1", expiry + 60))
    assert types(events)[:4] == [
        "GrantExpired",
        "ThresholdCrossed",
        "WalletSuspended",
        "SimsBarred",
    ]
    assert one(events, ThresholdCrossed).balance == 1_000_000
    assert run.state.suspended


def test_a_late_cdr_started_after_an_expiry_never_burns_the_expired_grant() -> None:
    expiry = T0 + 86400
    run = given_wallet(opening("5", priority=10, expires_at=expiry), opening("10"))
    run.given(cdr("c1", 0, at=T0))
    # started after the expiry, it is the first input since: the grant expires first
    events = run.when(cdr("c2", MB, at=expiry + 10))
    assert types(events) == ["GrantExpired", "UsageRated"]
    assert debits(one(events, UsageRated)) == [("open:w1/1", 1_000_000)]


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.integers(-3 * 86400, 3 * 86400), min_size=1, max_size=12),
    order=st.randoms(use_true_random=False),
)
def test_a_cdr_started_after_an_expiry_never_burns_it_whatever_order_cdrs_arrive_in(
    offsets: list[int], order: random.Random
) -> None:
    expiry = T0 + 5 * 86400
    run = given_wallet(opening("50", priority=10, expires_at=expiry), opening("100"))
    records = [cdr(f"c{i}", MB, at=expiry + offset) for i, offset in enumerate(offsets)]
    order.shuffle(records)  # late arrivals: a record may come after later ones
    for record in records:
        for e in of(run.when(record), UsageRated):
            if e.at >= dt(expiry):
                assert "open:w1/0" not in [grant for grant, _ in debits(e)]


def test_a_settlement_is_named_and_its_grants_are_what_its_debits_leave() -> None:
    state = Wallets(catalog()).given(top_up("t1", "0.000003"), top_up("t2", "0.000004")).state
    both = settle(state, 5, T0)
    assert isinstance(both, Settlement)
    assert both.grants == apply_debits(state.grants, both.debits)
    assert sum(d.amount for d in both.debits) + both.overdraft == 5
    first = settle(state, 1, T0)
    assert len(first.debits) == 1
    assert first.grants == apply_debits(state.grants, first.debits)
    assert settle(state, 0, T0) == Settlement((), 0, 0, state.grants)
    over = settle(state, state.credit + 3, T0)
    assert (over.overdraft, over.grants) == (3, ())
