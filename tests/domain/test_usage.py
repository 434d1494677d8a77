"""A wallet rating usage: what rates a CDR (``resolve``), event ids, idempotency, rejections,
thresholds and suspension."""

from __future__ import annotations

import pytest

from engine.domain import Catalog, Cdr, decide
from engine.domain.catalog import Filter
from engine.domain.draft import Draft
from engine.domain.events import (
    AutoTopUpRequested,
    CdrRejected,
    Charged,
    CommandRejected,
    GrantAdded,
    GrantExpired,
    GrantInfo,
    SimsBarred,
    SimsUnbarred,
    ThresholdCrossed,
    UsageRated,
    WalletOpened,
    WalletResumed,
    WalletSuspended,
)
from engine.domain.refusal import Refused
from engine.domain.state import initial_state
from engine.domain.usage import resolve

from .builders import (
    DAY,
    MB,
    SIM1,
    SIM2,
    T0,
    Wallets,
    catalog,
    cdr,
    dt,
    of,
    one,
    opening,
    plan,
    rate,
    sub,
    tick,
    top_up,
    ts,
    types,
    version,
    wallet,
)

EUR_PER_MB = plan(rates={"data": {"EU": rate("1", MB)}})


def eur_wallet(**kw: object) -> Wallets:
    return Wallets(catalog(plans=[EUR_PER_MB], wallets=[wallet(**kw)]))  # type: ignore[arg-type]


# -- ids and idempotency ---------------------------------------------------------------


def test_event_ids_are_input_key_and_position() -> None:
    run = eur_wallet(opening=[opening("1")], thresholds=["0.5"])
    events = run.when(cdr("c1", 2 * MB, source="opA"))
    assert [e.id for e in events] == ["open:w1#0", "cdr:opA/c1#1", "cdr:opA/c1#2"]
    assert types(events) == ["WalletOpened", "UsageRated", "ThresholdCrossed"]
    events = run.when(top_up("pay-1", "5", at=T0 + 1))
    assert [e.id for e in events] == ["cmd:pay-1#0"]


def test_decide_is_step_without_the_state() -> None:
    cat = catalog(plans=[EUR_PER_MB])
    state = initial_state("w1")
    assert decide(state, cdr("c1", MB), cat) == Wallets(cat).when(cdr("c1", MB))


def test_duplicate_cdr_is_rejected_and_not_charged_again() -> None:
    run = eur_wallet()
    run.given(cdr("c1", MB))
    balance = run.balance
    # the same id again, even with another volume and time, is the same record
    events = run.when(cdr("c1", 5 * MB, at=T0 + 3600))
    rejected = one(events, CdrRejected)
    assert (rejected.reason, rejected.id, len(events)) == ("duplicate", "cdr:c1#duplicate", 1)
    assert run.balance == balance


def test_cdr_ids_are_unique_per_source() -> None:
    run = eur_wallet()
    run.given(cdr("c1", MB, source="opA"))
    assert one(run.when(cdr("c1", MB, source="opB")), UsageRated).amount == 1_000_000
    assert one(run.when(cdr("c1", MB)), UsageRated).id == "cdr:c1#0"
    assert one(run.when(cdr("c1", MB, source="opA")), CdrRejected).reason == "duplicate"


def test_late_only_once_ids_that_old_may_have_been_forgotten() -> None:
    run = Wallets(catalog(plans=[EUR_PER_MB], dedup_window=10 * DAY))
    run.given(cdr("c1", MB, at=T0))
    # nothing forgotten yet: however old, a record is checked against every id and rated
    assert one(run.when(cdr("c0", MB, at=T0 - 40 * DAY)), UsageRated)
    run.given(cdr("c2", MB, at=T0 + 10 * DAY))  # first rotation: nothing dropped
    assert run.state.retained_since == 0
    run.given(cdr("c3", MB, at=T0 + 20 * DAY))  # second: the first generation is dropped
    assert run.state.retained_since == T0 + 10 * DAY
    late = one(run.when(cdr("c4", MB, at=T0 + 10 * DAY - 1)), CdrRejected)
    assert (late.reason, late.id) == ("late", "cdr:c4#late")
    # re-sending the dropped generation's c1 is late, not charged again
    assert one(run.when(cdr("c1", MB, at=T0)), CdrRejected).reason == "late"
    # from retained_since on, ids are still known: c2 is a duplicate, a new one is rated
    assert one(run.when(cdr("c2", MB, at=T0 + 10 * DAY)), CdrRejected).reason == "duplicate"
    assert one(run.when(cdr("c5", MB, at=T0 + 10 * DAY)), UsageRated)


def test_rejected_cdr_is_not_remembered_and_charges_nothing() -> None:
    run = eur_wallet()
    events = run.when(cdr("c1", MB, network="999-01"))
    # one event, named by its reason; the wallet does not open on a rejection
    assert types(events) == ["CdrRejected"]
    assert events[0].id == "cdr:c1#unknown_zone"
    assert run.state == initial_state("w1")
    # re-sent, it is rejected for the same reason again (not as a duplicate)
    again = run.when(cdr("c1", MB, network="999-01"))
    assert [(type(e).__name__, e.id) for e in again] == [("CdrRejected", "cdr:c1#unknown_zone")]
    assert run.state == initial_state("w1")
    # the wallet opens on its first accepted input
    events = run.when(cdr("c2", MB))
    assert types(events) == ["WalletOpened", "UsageRated"]
    assert run.balance == 99_000_000


def test_a_rejected_cdr_expires_nothing() -> None:
    run = eur_wallet(opening=[opening("5", expires_at=T0 + DAY)])
    run.given(cdr("c1", MB))
    before = run.state
    # at the grant's expiry, a record that cannot be rated decides nothing but its rejection
    events = run.when(cdr("c2", MB, at=T0 + DAY, network="999-01"))
    assert [(type(e).__name__, e.id) for e in events] == [("CdrRejected", "cdr:c2#unknown_zone")]
    assert run.state == before and run.balance == 4_000_000
    # the next accepted input expires the grant
    events = run.when(cdr("c3", MB, at=T0 + DAY))
    assert types(events) == ["GrantExpired", "UsageRated"]
    assert one(events, GrantExpired).amount == 4_000_000


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (cdr("c1", -1), "negative_volume"),
        (cdr("c1", MB, iccid="8999"), "unknown_sim"),
        (cdr("c1", MB, iccid=SIM2), "sim_inactive"),  # SIM2 starts in February
        (cdr("c1", MB, network="999-01"), "unknown_zone"),
        (cdr("c1", MB, network="310-260"), "no_rate"),  # the plan has no US data rate
        (cdr("c1", 1, service="sms"), "no_rate"),
        (cdr("c1", MB, iccid=SIM1, at=ts("2025-06-01T00:00:00Z")), "no_plan_version"),
    ],
)
def test_cdr_rejections(record: object, reason: str) -> None:
    cat = catalog(
        plans=[
            plan(
                "basic",
                version(
                    effective_from=ts("2025-12-01T00:00:00Z"), rates={"data": {"EU": rate("1", 1)}}
                ),
            )
        ],
        subs=[sub(SIM1), sub(SIM2, active_from=ts("2026-02-01T00:00:00Z"))],
    )
    run = Wallets(cat)
    # as the wallet's first input: the rejection alone, named by its reason
    events = run.when(record)  # type: ignore[arg-type]
    assert types(events) == ["CdrRejected"]
    assert (one(events, CdrRejected).reason, events[0].id) == (reason, f"cdr:c1#{reason}")
    assert run.state == initial_state("w1")
    # in an open wallet: still the rejection alone, and nothing charged
    run.given(tick("k1", T0))
    events = run.when(record)  # type: ignore[arg-type]
    assert types(events) == ["CdrRejected"]
    assert one(events, CdrRejected).reason == reason
    assert run.balance == 100_000_000


def test_unknown_wallet_is_rejected_without_opening() -> None:
    run = Wallets(catalog(), wallet_id="nobody")
    events = run.when(cdr("c1", MB))
    assert types(events) == ["CdrRejected"]
    assert one(events, CdrRejected).reason == "unknown_wallet"
    assert one(run.when(top_up("t1", "5")), CommandRejected).reason == "unknown_wallet"


def test_plan_in_another_currency_is_rejected() -> None:
    usd = plan("usd", currency="USD", rates={"data": {"EU": rate("1", MB)}})
    run = Wallets(catalog(plans=[usd], subs=[sub(plan="usd")]))
    events = run.when(cdr("c1", MB))
    assert [(type(e).__name__, e.id) for e in events] == [
        ("CdrRejected", "cdr:c1#currency_mismatch")
    ]
    assert one(events, CdrRejected).reason == "currency_mismatch"


# -- thresholds and auto top-up --------------------------------------------------------


def test_threshold_fires_once_per_downward_crossing_and_rearms_on_top_up() -> None:
    run = eur_wallet(opening=[opening("10")], thresholds=["5", "2"])
    assert not of(run.when(cdr("c1", 4 * MB)), ThresholdCrossed)  # 6 left
    crossed = one(run.when(cdr("c2", 2 * MB, at=T0 + 1)), ThresholdCrossed)  # 4 left
    assert (crossed.level, crossed.balance) == (5_000_000, 4_000_000)
    # further down, past 5 again: no second warning for 5; 2 is crossed now (1 left)
    assert [t.level for t in of(run.when(cdr("c3", 3 * MB, at=T0 + 2)), ThresholdCrossed)] == [
        2_000_000
    ]
    # a top-up to 4 re-arms 2 only (4 < 5)
    assert one(run.when(top_up("t1", "3", at=T0 + 3)), GrantAdded).rearmed == (2_000_000,)
    # a top-up to 6 re-arms 5
    assert one(run.when(top_up("t2", "2", at=T0 + 4)), GrantAdded).rearmed == (5_000_000,)
    # and crossing again fires both once more
    events = run.when(cdr("c4", 5 * MB, at=T0 + 5))
    assert [t.level for t in of(events, ThresholdCrossed)] == [5_000_000, 2_000_000]


def test_crossing_several_thresholds_at_once_fires_each_highest_first() -> None:
    run = eur_wallet(opening=[opening("10")], thresholds=["8", "5", "2"])
    events = run.when(cdr("c1", 9 * MB))
    assert [(t.level, t.balance) for t in of(events, ThresholdCrossed)] == [
        (8_000_000, 1_000_000),
        (5_000_000, 1_000_000),
        (2_000_000, 1_000_000),
    ]


def test_auto_top_up_is_requested_once_until_rearmed() -> None:
    run = eur_wallet(opening=[opening("10")], auto_top_up=("3", "20"))
    req = one(run.when(cdr("c1", 8 * MB)), AutoTopUpRequested)
    assert (req.amount, req.balance) == (20_000_000, 2_000_000)
    # it invents no money
    assert run.balance == 2_000_000
    assert not of(run.when(cdr("c2", MB, at=T0 + 1)), AutoTopUpRequested)
    # a top-up that stays below the level does not re-arm it
    assert not one(run.when(top_up("t1", "1", at=T0 + 2)), GrantAdded).auto_top_up_rearmed
    assert not of(run.when(cdr("c3", MB, at=T0 + 3)), AutoTopUpRequested)
    # the payment system's top-up does
    assert one(run.when(top_up("t2", "20", at=T0 + 4)), GrantAdded).auto_top_up_rearmed
    assert one(run.when(cdr("c4", 20 * MB, at=T0 + 5)), AutoTopUpRequested)


# -- suspension ------------------------------------------------------------------------


def test_suspension_resume_and_restart_fee() -> None:
    # given two SIMs on a plan with a 0.50 EUR restart fee, 1 EUR of credit, 1 EUR of
    # overdraft; suspended at 0, resumed above 5 EUR
    cat = catalog(
        plans=[plan(rates={"data": {"EU": rate("1", MB)}}, restart_fee="0.50")],
        wallets=[wallet(opening=[opening("1")], overdraft="1", suspend_at=0, resume_at=5_000_000)],
        subs=[sub(SIM1), sub(SIM2)],
    )
    run = Wallets(cat)
    # when usage takes the balance to -0.50: rated into the overdraft, then suspended
    events = run.when(cdr("c1", 1_572_864))  # 1.5 MB
    assert types(events) == ["WalletOpened", "UsageRated", "WalletSuspended", "SimsBarred"]
    assert one(events, UsageRated).overdraft == 500_000
    assert one(events, WalletSuspended).balance == -500_000
    assert one(events, SimsBarred).iccids == (SIM1, SIM2)
    # usage is still rated while suspended, owed in full past the limit, no second suspension
    events = run.when(cdr("c2", MB, at=T0 + 1))
    assert types(events) == ["UsageRated"]
    assert (one(events, UsageRated).overdraft, one(events, UsageRated).uncollected) == (
        1_000_000,
        0,
    )
    # a top-up to 1.50 is not above the resume level
    assert types(run.when(top_up("t1", "3", at=T0 + 2))) == ["GrantAdded"]
    assert run.state.suspended
    # a top-up to 11.50 resumes, unbars both SIMs, and charges each restart fee
    events = run.when(top_up("t2", "10", at=T0 + 3))
    assert types(events) == ["GrantAdded", "WalletResumed", "SimsUnbarred", "Charged", "Charged"]
    assert one(events, WalletResumed).balance == 11_500_000
    assert one(events, SimsUnbarred).iccids == (SIM1, SIM2)
    assert [(c.kind, c.ref, c.amount) for c in of(events, Charged)] == [
        ("restart_fee", SIM1, 500_000),
        ("restart_fee", SIM2, 500_000),
    ]
    assert run.balance == 10_500_000
    assert not run.state.suspended


def test_resume_without_restart_fee() -> None:
    run = eur_wallet(opening=[opening("1")], suspend_at=0, resume_at=0)
    assert of(run.when(cdr("c1", MB)), WalletSuspended)
    assert types(run.when(top_up("t1", "0.000001", at=T0 + 1))) == [
        "GrantAdded",
        "WalletResumed",
        "SimsUnbarred",
    ]


def test_split_billing_filter_routes_the_charge_and_keeps_revenue_here() -> None:
    corp = Filter("corp-apn", apns=("corp.apn",), payer="w2")
    cat = catalog(
        plans=[plan(rates={"data": {"EU": rate("1", MB)}}, filters=[corp])],
        wallets=[wallet("w1", opening=[opening("1")], suspend_at=0), wallet("w2")],
    )
    run = Wallets(cat)
    events = run.when(cdr("c1", 5 * MB, apn="corp.apn"))
    rated = one(events, UsageRated)
    assert (rated.payer, rated.filter, rated.amount) == ("w2", "corp-apn", 5_000_000)
    # nothing is paid here, nothing is suspended here, the revenue lines are here
    assert (rated.debits, rated.overdraft, rated.uncollected) == ((), 0, 0)
    assert sum(s.amount for s in rated.splits) == 5_000_000
    assert types(events) == ["WalletOpened", "UsageRated"]
    assert run.balance == 1_000_000


# -- given recorded events -------------------------------------------------------------


def opened(*grants: GrantInfo, at: int = T0) -> WalletOpened:
    return WalletOpened("open:w1#0", "w1", dt(at), "EUR", 30 * DAY, grants)


def test_given_a_fired_threshold_when_charged_below_it_then_no_second_warning() -> None:
    run = eur_wallet(opening=[opening("10")], thresholds=["5"])
    run.given_events(
        opened(GrantInfo("open:w1/0", "opening", 4_000_000, 40)),
        ThresholdCrossed("cdr:c0#1", "w1", dt(T0), 5_000_000, 4_000_000),
    )
    events = run.when(cdr("c1", MB, at=T0 + 1))
    assert types(events) == ["UsageRated"]
    assert run.balance == 3_000_000


def test_given_a_suspended_wallet_when_topped_up_above_resume_then_resumed() -> None:
    run = eur_wallet(opening=[opening("1")], suspend_at=0, resume_at=2_000_000)
    run.given_events(
        opened(),
        WalletSuspended("cdr:c0#1", "w1", dt(T0), 0),
        SimsBarred("cdr:c0#2", "w1", dt(T0), (SIM1,)),
    )
    assert types(run.when(top_up("t1", "2", at=T0 + 1))) == ["GrantAdded"]
    assert types(run.when(top_up("t2", "0.000001", at=T0 + 2))) == [
        "GrantAdded",
        "WalletResumed",
        "SimsUnbarred",
    ]


def test_given_a_rated_cdr_when_it_is_resent_then_it_is_a_duplicate() -> None:
    run = eur_wallet()
    given = Wallets(run.catalog)
    recorded = given.when(cdr("c1", MB))
    run.given_events(*recorded)
    assert one(run.when(cdr("c1", MB)), CdrRejected).reason == "duplicate"


def test_given_a_grant_with_expiry_when_the_clock_passes_it_then_it_expires() -> None:
    run = eur_wallet(opening=[])
    run.given_events(
        opened(),
        GrantAdded(
            "cmd:t1#0",
            "w1",
            dt(T0),
            GrantInfo("cmd:t1#0", "promotion", 3_000_000, 10, dt(T0 + DAY)),
        ),
    )
    assert types(run.when(tick("k1", T0 + DAY - 1))) == []
    expired = one(run.when(tick("k2", T0 + DAY)), GrantExpired)
    assert (expired.grant_id, expired.amount, run.balance) == ("cmd:t1#0", 3_000_000, 0)


def test_a_threshold_fires_when_the_balance_lands_exactly_on_it() -> None:
    run = eur_wallet(opening=[opening("10")], thresholds=["5"])
    crossed = one(run.when(cdr("c1", 5 * MB)), ThresholdCrossed)  # 5 left: reached
    assert (crossed.level, crossed.balance) == (5_000_000, 5_000_000)
    # a top-up back to exactly the level leaves it reached: not re-armed
    run.when(cdr("c2", MB, at=T0 + 1))  # 4 left
    assert one(run.when(top_up("t1", "1", at=T0 + 2)), GrantAdded).rearmed == ()
    # above it, re-armed; reaching it again fires again
    assert one(run.when(top_up("t2", "0.01", at=T0 + 3)), GrantAdded).rearmed == (5_000_000,)
    assert one(run.when(cdr("c3", 10_486, at=T0 + 4)), ThresholdCrossed).level == 5_000_000


def _fleet(restart_fee_per: str = "sim", sims: int = 10) -> Wallets:
    """A wallet suspended at 0 with ``sims`` SIMs on a plan with a 1.00 EUR restart fee."""
    iccids = [f"89000000000000001{n:02d}" for n in range(sims)]
    cat = catalog(
        plans=[
            plan(
                rates={"data": {"EU": rate("1", MB)}},
                restart_fee="1",
                restart_fee_per=restart_fee_per,
            )
        ],
        wallets=[wallet(opening=[opening("1")], overdraft="5", suspend_at=0, resume_at=0)],
        subs=[sub(i) for i in iccids],
    )
    run = Wallets(cat)
    run.given(cdr("c1", 2 * MB, iccid=iccids[0]))  # -1.00: suspended
    assert run.state.suspended
    return run


def test_a_top_up_smaller_than_the_restart_fees_resumes_nothing_and_keeps_the_money() -> None:
    run = _fleet()
    # 6.00 lifts the balance to 5.00, above resume_at, but ten fees of 1.00 would take it
    # to -5.00: the wallet stays suspended, keeps the 5.00, and no SIM is unbarred
    events = run.when(top_up("t1", "6", at=T0 + 1))
    assert types(events) == ["GrantAdded"]
    assert run.state.suspended and run.balance == 5_000_000
    # enough for the fees and above resume_at: resumed, unbarred, charged, not re-suspended
    events = run.when(top_up("t2", "6", at=T0 + 2))
    assert types(events) == ["GrantAdded", "WalletResumed", "SimsUnbarred", *["Charged"] * 10]
    assert not run.state.suspended and run.balance == 1_000_000


def test_a_restart_fee_per_wallet_is_charged_once_per_resume() -> None:
    run = _fleet("wallet")
    events = run.when(top_up("t1", "3", at=T0 + 1))
    assert types(events) == ["GrantAdded", "WalletResumed", "SimsUnbarred", "Charged"]
    fee = one(events, Charged)
    assert (fee.kind, fee.ref, fee.amount) == ("restart_fee", "plan:basic", 1_000_000)
    assert run.balance == 1_000_000


# -- resolve: what rates a CDR, or why none can ---------------------------------------------


def resolving(record: Cdr, cat: Catalog | None = None) -> Draft:
    cat = catalog() if cat is None else cat
    return Draft(initial_state("w1"), "k", cat, cat.wallets["w1"])


def test_a_cdr_resolves_to_its_sim_plan_zone_and_rate() -> None:
    record = cdr("c1", MB)
    found = resolve(resolving(record), record, T0)
    sub_, plan_id, version_, zone, chosen, matched, table = found
    assert (sub_.iccid, plan_id, version_.version, zone, matched) == (SIM1, "basic", 1, "EU", None)
    assert chosen == version_.rates["data"]["EU"]
    assert table.version is version_  # the version's own rate table, from the index


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (cdr("c1", -1), "negative_volume"),
        (cdr("c1", MB, iccid="8900000000000000999"), "unknown_sim"),
        (cdr("c1", MB, network="999-01"), "unknown_zone"),
        (cdr("c1", MB, network="262-07"), "no_rate"),
    ],
)
def test_a_cdr_that_nothing_rates_is_refused_with_why(record: Cdr, reason: str) -> None:
    with pytest.raises(Refused) as caught:
        resolve(resolving(record), record, T0)
    assert caught.value.reason == reason


def test_a_plan_in_another_currency_than_the_wallet_is_refused() -> None:
    record = cdr("c1", MB)
    usd = catalog(wallets=[wallet(currency="USD")])
    with pytest.raises(Refused) as caught:
        resolve(resolving(record, usd), record, T0)
    assert caught.value.reason == "currency_mismatch"
