"""Commands decided on a wallet (``account``): top-ups, vouchers, plan changes and SIM moves.
(The clock's recurring charges: test_recurring.py.)"""

from __future__ import annotations

import pytest

from engine.domain.account import positive_amount
from engine.domain.commands import Command
from engine.domain.events import (
    CdrRejected,
    Charged,
    CommandRejected,
    GrantAdded,
    GrantExpired,
    PlanChanged,
    SimAttached,
    SimDetached,
    UsageRated,
)
from engine.domain.refusal import Refused
from engine.domain.state import initial_state

from .builders import (
    DAY,
    MB,
    SIM1,
    SIM2,
    T0,
    Wallets,
    apply_charge,
    attach,
    catalog,
    cdr,
    change_plan,
    detach,
    of,
    one,
    opening,
    plan,
    rate,
    redeem,
    tick,
    top_up,
    ts,
    types,
    version,
    voucher,
    wallet,
)

# -- top-ups ---------------------------------------------------------------------------


def test_top_up_adds_a_grant() -> None:
    run = Wallets(catalog())
    events = run.when(top_up("t1", "12.345678", expires_at=T0 + DAY))
    added = one(events, GrantAdded)
    assert (added.grant.grant_id, added.grant.kind, added.grant.amount) == (
        "cmd:t1#1",
        "top_up",
        12_345_678,
    )
    assert (added.grant.priority, added.grant.expires_at.timestamp()) == (40, T0 + DAY)  # type: ignore[union-attr]
    assert run.balance == 112_345_678


def test_retried_top_up_credits_once() -> None:
    run = Wallets(catalog())
    run.given(top_up("t1", "10"))
    before = run.state
    # a retry of a command that moved money is a no-op: no events, no rejection, no credit
    assert run.when(top_up("t1", "10", at=T0 + 60)) == []
    # whatever it carries: the key decides, not the content
    assert run.when(top_up("t1", "25", at=T0 + 120)) == []
    assert run.state == before
    assert run.balance == 110_000_000


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        ("ten", "EUR", "invalid_amount"),
        ("1.0000001", "EUR", "invalid_amount"),
        ("0", "EUR", "invalid_amount"),
        ("-5", "EUR", "invalid_amount"),
        ("10", "USD", "currency_mismatch"),
    ],
)
def test_bad_top_ups_are_rejected_and_credit_nothing(
    amount: str, currency: str, reason: str
) -> None:
    run = Wallets(catalog())
    events = run.when(top_up("t1", amount, currency=currency))
    # a rejection decides nothing else: not even the opening of the wallet
    assert types(events) == ["CommandRejected"]
    assert (events[0].reason, events[0].id) == (reason, f"cmd:t1#{reason}")  # type: ignore[union-attr]
    assert run.state == initial_state("w1")
    # a rejected command is not remembered: fixed and re-sent under the same id, it applies
    # (and, as the wallet's first accepted input, opens it)
    events = run.when(top_up("t1", "10"))
    assert types(events) == ["WalletOpened", "GrantAdded"]
    assert one(events, GrantAdded).grant.amount == 10_000_000
    assert run.balance == 110_000_000


def test_currency_mismatch_top_up_names_both_currencies() -> None:
    run = Wallets(catalog())
    rejected = one(run.when(top_up("t1", "10", currency="USD")), CommandRejected)
    assert (rejected.reason, rejected.command) == ("currency_mismatch", "TopUp")
    assert "EUR" in rejected.detail and "USD" in rejected.detail


def test_top_up_that_would_expire_before_it_is_added_is_rejected() -> None:
    run = Wallets(catalog())
    assert (
        one(run.when(top_up("t1", "10", expires_at=T0)), CommandRejected).reason == "invalid_expiry"
    )


def test_top_up_kind_and_priority() -> None:
    run = Wallets(catalog())
    promo = one(run.when(top_up("t1", "1", kind="promotion")), GrantAdded).grant
    refund = one(run.when(top_up("t2", "1", kind="refund", priority=5)), GrantAdded).grant
    assert (promo.kind, promo.priority, refund.kind, refund.priority) == (
        "promotion",
        10,
        "refund",
        5,
    )


# -- vouchers --------------------------------------------------------------------------


def test_voucher_redeemed_once() -> None:
    run = Wallets(catalog(vouchers=[voucher("V-10", "10", grant_days=30)]))
    added = one(run.when(redeem("r1", "V-10")), GrantAdded)
    assert (added.voucher, added.grant.kind, added.grant.amount, added.grant.priority) == (
        "V-10",
        "voucher",
        10_000_000,
        20,
    )
    assert (
        added.grant.expires_at is not None and added.grant.expires_at.timestamp() == T0 + 30 * DAY
    )
    # redeemed again under another command id: rejected with a reason, no credit
    second = one(run.when(redeem("r2", "V-10", at=T0 + 1)), CommandRejected)
    assert second.reason == "voucher_already_redeemed"
    # the same command retried: a no-op, with no events at all
    before = run.state
    assert run.when(redeem("r1", "V-10", at=T0 + 2)) == []
    assert run.state == before
    assert run.balance == 110_000_000


def test_voucher_grant_expires_after_its_days() -> None:
    run = Wallets(catalog(vouchers=[voucher("V", "10", grant_days=1)]))
    run.given(redeem("r1", "V"))
    gone = one(run.when(tick("t1", T0 + DAY)), GrantExpired)
    assert (gone.grant_id, gone.amount) == ("cmd:r1#1", 10_000_000)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("NOPE", "unknown_voucher"),
        ("OTHER", "voucher_not_for_wallet"),
        ("OLD", "voucher_expired"),
    ],
)
def test_voucher_rejections(code: str, reason: str) -> None:
    vouchers = [
        voucher("OTHER", "5", wallet="w2"),
        voucher("OLD", "5", valid_until=T0 - 1),
    ]
    run = Wallets(catalog(wallets=[wallet("w1"), wallet("w2")], vouchers=vouchers))
    events = run.when(redeem("r1", code))
    assert types(events) == ["CommandRejected"]
    assert (events[0].reason, events[0].id) == (reason, f"cmd:r1#{reason}")  # type: ignore[union-attr]
    # nothing credited, nothing opened, nothing remembered
    assert run.state == initial_state("w1")
    # in an open wallet too, the rejection is all that is decided
    run.given(tick("k1", T0))
    assert types(run.when(redeem("r2", code, at=T0 + 1))) == ["CommandRejected"]
    assert run.balance == 100_000_000


def test_voucher_valid_until_is_inclusive() -> None:
    run = Wallets(catalog(vouchers=[voucher("V", "5", valid_until=T0)]))
    assert one(run.when(redeem("r1", "V", at=T0)), GrantAdded)


# -- plan changes ----------------------------------------------------------------------


def test_plan_change_mid_cycle_picks_the_new_plan_rates() -> None:
    cheap = plan("cheap", rates={"data": {"EU": rate("0.001", MB)}})
    run = Wallets(catalog(plans=[plan("basic"), cheap]))
    change = T0 + 10 * DAY
    run.given(cdr("before", MB, at=change - 1))
    changed = one(run.when(change_plan("cp1", SIM1, "cheap", at=change)), PlanChanged)
    assert (changed.iccid, changed.plan) == (SIM1, "cheap")
    after = one(run.when(cdr("after", MB, at=change)), UsageRated)
    assert (after.plan, after.amount) == ("cheap", 1_000)
    # a record from before the change, arriving late, keeps the old plan
    old = one(run.when(cdr("late-one", MB, at=change - 60)), UsageRated)
    assert (old.plan, old.amount) == ("basic", 10_000)


def test_retried_plan_change_and_sim_moves_are_no_ops() -> None:
    cheap = plan("cheap", rates={"data": {"EU": rate("0.001", MB)}})
    run = Wallets(catalog(plans=[plan("basic"), cheap]))
    run.given(change_plan("cp1", SIM1, "cheap", at=T0 + 10))
    assert run.when(change_plan("cp1", SIM1, "cheap", at=T0 + 10)) == []
    run.given(attach("a1", SIM2, at=T0 + 20))
    assert run.when(attach("a1", SIM2, at=T0 + 20)) == []
    run.given(detach("d1", SIM2, at=T0 + 30))
    assert run.when(detach("d1", SIM2, at=T0 + 30)) == []
    # the state kept one plan change, not two
    assert len(run.state.plan_changes[SIM1]) == 1


def test_plan_change_rejections() -> None:
    usd = plan("usd", currency="USD")
    future = plan("future", version(effective_from=T0 + DAY))
    run = Wallets(catalog(plans=[plan("basic"), usd, future]))
    assert (
        one(run.when(change_plan("c1", SIM1, "nope", at=T0)), CommandRejected).reason
        == "unknown_plan"
    )
    assert (
        one(run.when(change_plan("c2", SIM1, "usd", at=T0)), CommandRejected).reason
        == "currency_mismatch"
    )
    assert (
        one(run.when(change_plan("c3", SIM1, "future", at=T0)), CommandRejected).reason
        == "no_plan_version"
    )
    assert (
        one(run.when(change_plan("c4", SIM2, "basic", at=T0)), CommandRejected).reason
        == "unknown_sim"
    )


# -- attach / detach -------------------------------------------------------------------


def test_attach_and_detach_sim() -> None:
    run = Wallets(catalog(plans=[plan("basic", mrc="2")]))
    # an unknown SIM is rejected until it is attached
    assert one(run.when(cdr("c1", MB, iccid=SIM2)), CdrRejected).reason == "unknown_sim"
    attached = one(run.when(attach("a1", SIM2, at=T0 + 10)), SimAttached)
    assert (attached.iccid, attached.plan) == (SIM2, "basic")
    # rated from the attachment on, not before
    assert one(run.when(cdr("c2", MB, iccid=SIM2, at=T0 + 10)), UsageRated).amount == 10_000
    assert one(run.when(cdr("c3", MB, iccid=SIM2, at=T0 + 9)), CdrRejected).reason == "sim_inactive"
    # attached twice: rejected
    assert (
        one(run.when(attach("a2", SIM2, at=T0 + 20)), CommandRejected).reason
        == "sim_already_attached"
    )
    # its MRC is taken by the clock
    assert [c.ref for c in of(run.when(tick("t1", T0 + 30)), Charged)] == [SIM1, SIM2]
    # detached: usage after it is rejected, usage before it still rated
    assert one(run.when(detach("d1", SIM2, at=T0 + 100)), SimDetached).iccid == SIM2
    assert (
        one(run.when(cdr("c4", MB, iccid=SIM2, at=T0 + 100)), CdrRejected).reason == "sim_inactive"
    )
    assert one(run.when(cdr("c5", MB, iccid=SIM2, at=T0 + 99)), UsageRated)
    # detached twice: rejected; and no MRC in the next cycle
    assert one(run.when(detach("d2", SIM2, at=T0 + 200)), CommandRejected).reason == "unknown_sim"
    feb = ts("2026-02-01T00:00:00Z")
    assert [c.ref for c in of(run.when(tick("t2", feb)), Charged)] == [SIM1]
    # attached again later: rated again
    run.given(attach("a3", SIM2, at=feb + 10))
    assert one(run.when(cdr("c6", MB, iccid=SIM2, at=feb + 20)), UsageRated)


def test_attach_rejections() -> None:
    run = Wallets(catalog(plans=[plan("basic")], wallets=[wallet("w1"), wallet("w2")]))
    assert (
        one(run.when(attach("a1", SIM1, at=T0)), CommandRejected).reason == "sim_already_attached"
    )
    assert (
        one(run.when(attach("a2", SIM2, "nope", at=T0)), CommandRejected).reason == "unknown_plan"
    )
    assert (
        one(run.when(attach("a3", SIM2, at=T0, pool="p9")), CommandRejected).reason
        == "unknown_pool"
    )


def test_opening_grants_expire_through_commands_too() -> None:
    run = Wallets(catalog(wallets=[wallet(opening=[opening("5", expires_at=T0)])]))
    events = run.when(top_up("t1", "1", at=T0))
    assert types(events) == ["WalletOpened", "GrantExpired", "GrantAdded"]
    assert run.balance == 1_000_000


@pytest.mark.parametrize("open_before", [True, False])
def test_a_command_accepted_after_a_rejection_gets_ids_of_its_own(open_before: bool) -> None:
    """A rejected input is not remembered, so it may be re-sent and accepted: the ids of
    what is accepted must never reuse the rejection's, or a store that ignores a second
    write of an id would drop the accepted event."""
    run = Wallets(catalog())
    if open_before:
        run.given(tick("t0", T0))
    rejection = run.when(top_up("pay-1", "10", currency="USD"))
    assert types(rejection) == ["CommandRejected"]
    assert rejection[0].id == "cmd:pay-1#currency_mismatch"
    accepted = run.when(top_up("pay-1", "10", at=T0 + 1))
    assert of(accepted, GrantAdded)
    ids = [e.id for e in accepted]
    assert rejection[0].id not in ids
    assert len(set(ids)) == len(ids)
    # and once it has moved money, a further retry is a no-op
    assert run.when(top_up("pay-1", "10", at=T0 + 2)) == []
    assert run.balance == 110_000_000


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (top_up("x", "-1"), "invalid_amount"),
        (top_up("x", "1", currency="USD"), "currency_mismatch"),
        (top_up("x", "1", expires_at=T0), "invalid_expiry"),
        (redeem("x", "NOPE"), "unknown_voucher"),
        (change_plan("x", SIM1, "nope", at=T0), "unknown_plan"),
        (change_plan("x", SIM2, "basic", at=T0), "unknown_sim"),
        (attach("x", SIM1, at=T0), "sim_already_attached"),
        (attach("x", SIM2, at=T0, pool="p9"), "unknown_pool"),
        (detach("x", SIM2, at=T0), "unknown_sim"),
        (apply_charge("x", -5), "invalid_amount"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_a_rejected_command_decides_nothing_else(command: Command, reason: str) -> None:
    # an opening grant that is due to expire at the command's instant
    cat = catalog(wallets=[wallet(opening=[opening("5", expires_at=T0)]), wallet("w2")])
    # as the wallet's first input: no WalletOpened before the rejection
    run = Wallets(cat)
    assert [(type(e).__name__, e.id) for e in run.when(command)] == [
        ("CommandRejected", f"cmd:x#{reason}")
    ]
    assert run.state == initial_state("w1")
    # in an open wallet: no GrantExpired before it, the grant is still there
    run.given(tick("k0", T0 - 1))
    before = run.state
    events = run.when(command)
    assert types(events) == ["CommandRejected"]
    assert one(events, CommandRejected).reason == reason
    assert run.state == before and run.balance == 5_000_000
    # the next accepted input expires it
    assert one(run.when(tick("k1", T0)), GrantExpired).amount == 5_000_000


# -- the amount rule a client shares -------------------------------------------------------


def test_an_amount_is_read_in_micro_units() -> None:
    assert positive_amount("5") == 5_000_000
    assert positive_amount("0.000001") == 1


@pytest.mark.parametrize("text", ["0", "-1.50", "five", "0.0000001"])
def test_an_amount_not_above_zero_or_not_money_is_refused(text: str) -> None:
    """The CLI refuses such a command before sending it, by this same rule."""
    with pytest.raises(Refused) as caught:
        positive_amount(text)
    assert caught.value.reason == "invalid_amount"
