"""Provisioning commands (``provisioning``): a wallet opened on terms, closed, held and
released by hand, moved to a catalog revision. Each scenario also checks, through
``Wallets``, that the state is the fold of the events."""

from __future__ import annotations

import pytest

from engine.domain.events import (
    CatalogAdopted,
    CdrRejected,
    Charged,
    CommandRejected,
    GrantAdded,
    SimsBarred,
    SimsUnbarred,
    UsageRated,
    WalletClosed,
    WalletHeld,
    WalletOpened,
    WalletReleased,
    WalletResumed,
    WalletSuspended,
    WalletTerms,
)
from engine.domain.provisioning import open_terms, terms_wallet
from engine.domain.refusal import Refused

from .builders import (
    DAY,
    MB,
    SIM1,
    SIM2,
    T0,
    Wallets,
    adopt_catalog,
    attach,
    catalog,
    cdr,
    close_wallet,
    detach,
    one,
    open_wallet,
    opening,
    plan,
    rate,
    resume_wallet,
    sub,
    suspend_wallet,
    tick,
    top_up,
    types,
    wallet,
)

SIM9 = "8900000000000000099"


def rejected(events: list[object]) -> str:
    assert len(events) == 1 and isinstance(events[0], CommandRejected | CdrRejected), events
    return events[0].reason


# -- OpenWallet ------------------------------------------------------------------------


def test_open_wallet_opens_an_unlisted_wallet_on_its_terms() -> None:
    run = Wallets(catalog(dedup_window=3 * DAY), "w9")
    events = run.when(
        open_wallet(
            "o1",
            name="Nine",
            overdraft_limit="5",
            suspend_at="-2.5",
            resume_at="1",
            thresholds=("1", "10", "0.5"),
            cycle_anchor_day=15,
            revision=3,
        )
    )
    opened = one(events, WalletOpened)
    assert types(events) == ["WalletOpened"] and opened.id == "open:w9#0"
    assert (opened.currency, opened.dedup_window, opened.grants, opened.revision) == (
        "EUR",
        3 * DAY,
        (),
        3,
    )
    assert opened.terms == WalletTerms(
        "Nine", "EUR", 5_000_000, -2_500_000, 1_000_000, (10_000_000, 1_000_000, 500_000), 15
    )
    assert run.state.terms == opened.terms and run.state.revision == 3


def test_a_wallet_opened_by_command_is_decided_on_its_terms() -> None:
    cat = catalog(plans=[plan(rates={"data": {"EU": rate("1", MB)}})])
    run = Wallets(cat, "w9")
    run.given(
        open_wallet("o1", suspend_at="0", resume_at="1", thresholds=("2",)),
        attach("a1", SIM9, at=T0 + 1, wallet="w9"),
        top_up("t1", "3", at=T0 + 2, wallet="w9"),
    )
    events = run.when(cdr("c1", 2 * MB, at=T0 + 3, iccid=SIM9))
    assert types(events) == ["UsageRated", "ThresholdCrossed"]
    events = run.when(cdr("c2", MB, at=T0 + 4, iccid=SIM9))
    assert types(events) == ["UsageRated", "WalletSuspended", "SimsBarred"]
    assert one(events, SimsBarred).iccids == (SIM9,)
    # a top-up resumes it above resume_at, as a catalog wallet
    assert "WalletResumed" in types(run.when(top_up("t2", "5", at=T0 + 5, wallet="w9")))


def test_an_unlisted_wallet_takes_nothing_before_it_is_opened() -> None:
    run = Wallets(catalog(), "w9")
    assert rejected(run.when(top_up("t1", "5", wallet="w9"))) == "unknown_wallet"
    assert rejected(run.when(adopt_catalog("r2", 2, wallet="w9"))) == "unknown_wallet"
    assert run.state.opened is False


def test_open_wallet_is_refused_for_a_wallet_that_exists() -> None:
    run = Wallets(catalog())
    events = run.when(open_wallet("o1", wallet="w1"))
    assert rejected(events) == "wallet_exists" and "catalog" in events[0].detail  # type: ignore[attr-defined]
    nine = Wallets(catalog(), "w9")
    nine.given(open_wallet("o1", overdraft_limit="5"))
    # the same terms again (a resent command, under any id): nothing
    assert nine.when(open_wallet("o2", overdraft_limit="5.000")) == []
    assert rejected(nine.when(open_wallet("o3", overdraft_limit="6"))) == "wallet_exists"


@pytest.mark.parametrize(
    ("terms", "problem"),
    [
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"overdraft_limit": "-1"}, "overdraft_limit: cannot be negative"),
        ({"overdraft_limit": "x"}, "overdraft_limit"),
        ({"overdraft_limit": "0.0000001"}, "overdraft_limit"),
        ({"overdraft_limit": "99999999999999999"}, "too large"),
        ({"overdraft_limit": "1", "suspend_at": "-2"}, "suspend_at"),
        ({"suspend_at": "5", "resume_at": "4"}, "resume_at"),
        ({"suspend_at": "-1", "resume_at": "-2", "overdraft_limit": "3"}, "resume_at"),
        ({"thresholds": ("1", "1.0")}, "listed twice"),
        ({"cycle_anchor_day": 29}, "cycle_anchor_day"),
    ],
)
def test_invalid_terms_are_refused_with_what_is_wrong(
    terms: dict[str, object], problem: str
) -> None:
    run = Wallets(catalog(), "w9")
    events = run.when(open_wallet("o1", **terms))
    assert rejected(events) == "invalid_terms"
    assert problem in events[0].detail  # type: ignore[attr-defined]
    assert run.state.opened is False


def test_terms_default_as_in_a_catalog() -> None:
    terms = open_terms(open_wallet("o1", suspend_at="5"))
    # resume_at left at 0 takes suspend_at; the name is the wallet's id
    assert (terms.name, terms.suspend_at, terms.resume_at) == ("w9", 5_000_000, 5_000_000)
    with pytest.raises(Refused) as refusal:
        open_terms(open_wallet("o1", currency="eu", overdraft_limit="-1"))
    assert refusal.value.detail.count(";") == 1  # every problem named at once
    w = terms_wallet("w9", terms)
    assert (w.id, w.currency, w.suspend_at, w.opening, w.auto_top_up) == (
        "w9",
        "EUR",
        5_000_000,
        (),
        None,
    )


# -- CloseWallet -----------------------------------------------------------------------


def test_close_is_refused_while_a_sim_is_in_the_wallet() -> None:
    many = [sub(f"89000000000000000{i:02d}") for i in range(7)]
    run = Wallets(catalog(subs=many))
    events = run.when(close_wallet("x1"))
    assert rejected(events) == "wallet_in_use"
    detail = events[0].detail  # type: ignore[attr-defined]
    assert detail.startswith("7 SIM(s)") and "8900000000000000004" in detail
    assert "8900000000000000005" not in detail  # up to five named


@pytest.mark.parametrize(
    ("active_from", "active_to", "in_use"),
    [(0, T0 + 1, True), (T0 + DAY, None, True), (0, T0, False), (0, T0 - DAY, False)],
)
def test_a_sim_active_at_or_after_the_close_keeps_it_open(
    active_from: int, active_to: int | None, in_use: bool
) -> None:
    run = Wallets(catalog(subs=[sub(active_from=active_from, active_to=active_to)]))
    events = run.when(close_wallet("x1", at=T0))
    assert (types(events) == ["CommandRejected"]) is in_use


def test_a_closed_wallet_refuses_every_later_input() -> None:
    run = Wallets(catalog(subs=[sub(SIM1)]))
    run.given(detach("d1", SIM1, at=T0))
    events = run.when(close_wallet("x1", at=T0 + 1))
    assert one(events, WalletClosed).reason == "contract ended" and run.state.closed
    assert rejected(run.when(cdr("c1", MB, at=T0 + 2))) == "wallet_closed"
    assert rejected(run.when(top_up("t1", "5", at=T0 + 2))) == "wallet_closed"
    assert rejected(run.when(attach("a1", SIM2, at=T0 + 2))) == "wallet_closed"
    assert rejected(run.when(adopt_catalog("r2", 2, at=T0 + 2))) == "wallet_closed"
    # closed again, or a clock tick: nothing (no rejection piling up per tick)
    assert run.when(close_wallet("x2", at=T0 + 3)) == []
    assert run.when(tick("k1", T0 + 40 * DAY)) == []


def test_a_wallet_never_used_opens_and_closes_at_once() -> None:
    run = Wallets(catalog(subs=[]))
    assert types(run.when(close_wallet("x1"))) == ["WalletOpened", "WalletClosed"]


# -- SuspendWallet / ResumeWallet -------------------------------------------------------


def held_catalog(restart_fee: str = "0") -> object:
    return catalog(
        plans=[plan(restart_fee=restart_fee, rates={"data": {"EU": rate("1", MB)}})],
        wallets=[wallet(opening=[opening("10")], suspend_at=0, resume_at=1_000_000)],
        subs=[sub(SIM1), sub(SIM2, active_to=T0)],
    )


def test_suspend_by_hand_holds_suspends_and_bars() -> None:
    run = Wallets(held_catalog())  # type: ignore[arg-type]
    events = run.when(suspend_wallet("s1", at=T0 + 1))
    assert types(events) == ["WalletOpened", "WalletHeld", "WalletSuspended", "SimsBarred"]
    assert one(events, WalletSuspended).balance == 10_000_000
    assert one(events, SimsBarred).iccids == (SIM1,)  # the active SIMs only
    assert run.state.held and run.state.suspended
    assert run.when(suspend_wallet("s2", at=T0 + 2)) == []  # held already


def test_a_held_wallet_is_not_resumed_by_a_top_up() -> None:
    run = Wallets(held_catalog())  # type: ignore[arg-type]
    run.given(suspend_wallet("s1", at=T0 + 1))
    events = run.when(top_up("t1", "50", at=T0 + 2))
    assert types(events) == ["GrantAdded"] and run.state.suspended


def test_resume_by_hand_resumes_as_a_top_up_would() -> None:
    run = Wallets(held_catalog(restart_fee="2"))  # type: ignore[arg-type]
    run.given(suspend_wallet("s1", at=T0 + 1))
    events = run.when(resume_wallet("r1", at=T0 + 2))
    assert types(events) == ["WalletReleased", "WalletResumed", "SimsUnbarred", "Charged"]
    assert one(events, SimsUnbarred).iccids == (SIM1,)
    fee = one(events, Charged)
    assert (fee.kind, fee.ref, fee.amount) == ("restart_fee", SIM1, 2_000_000)
    assert not run.state.held and not run.state.suspended


def test_resume_by_hand_leaves_a_wallet_too_poor_suspended_by_its_balance() -> None:
    run = Wallets(held_catalog(restart_fee="9.5"))  # type: ignore[arg-type]
    run.given(suspend_wallet("s1", at=T0 + 1))
    events = run.when(resume_wallet("r1", at=T0 + 2))
    assert types(events) == ["WalletReleased"]
    assert run.state.suspended and not run.state.held
    # now a top-up resumes it, as any suspension by balance
    assert isinstance(run.when(top_up("t1", "5", at=T0 + 3))[1], WalletResumed)


def test_suspend_by_hand_of_a_wallet_suspended_by_its_balance_only_holds_it() -> None:
    run = Wallets(held_catalog())  # type: ignore[arg-type]
    run.given(
        cdr("c1", 20 * MB, at=T0 + 1),  # 20 EUR of data: below suspend_at
    )
    assert run.state.suspended
    assert types(run.when(suspend_wallet("s1", at=T0 + 2))) == ["WalletHeld"]


def test_resume_is_refused_when_not_held() -> None:
    run = Wallets(held_catalog())  # type: ignore[arg-type]
    events = run.when(resume_wallet("r1"))
    assert rejected(events) == "not_held"
    run.given(cdr("c1", 20 * MB, at=T0 + 1))
    events = run.when(resume_wallet("r2", at=T0 + 2))
    assert "a top-up resumes it" in events[0].detail  # type: ignore[attr-defined]


# -- AdoptCatalog ----------------------------------------------------------------------


def test_adopt_catalog_moves_the_wallet_to_a_newer_revision_only() -> None:
    run = Wallets(catalog())
    events = run.when(adopt_catalog("r2", 2))
    assert types(events) == ["WalletOpened", "CatalogAdopted"]
    assert one(events, WalletOpened).grants  # a catalog wallet's opening grants
    adopted = one(events, CatalogAdopted)
    assert (adopted.revision, adopted.digest, run.state.revision) == (2, "d" * 64, 2)
    assert run.when(adopt_catalog("r2b", 2)) == []  # resent
    assert run.when(adopt_catalog("r1", 1)) == []  # older
    assert types(run.when(adopt_catalog("r3", 3))) == ["CatalogAdopted"]


def test_a_wallet_opened_by_command_adopts_revisions_after_its_own() -> None:
    run = Wallets(catalog(), "w9")
    run.given(open_wallet("o1", revision=2))
    assert run.when(adopt_catalog("r2", 2, wallet="w9")) == []
    assert types(run.when(adopt_catalog("r3", 3, wallet="w9"))) == ["CatalogAdopted"]
    assert run.state.revision == 3 and run.state.terms is not None


def test_held_and_adopted_survive_a_catalog_wallet_opening_with_grants() -> None:
    """The opening of a catalog wallet is unchanged by the new fields (no terms)."""
    run = Wallets(catalog())
    events = run.when(top_up("t1", "1"))
    assert one(events, WalletOpened).terms is None and run.state.terms is None
    assert isinstance(events[1], GrantAdded) and not any(
        isinstance(e, UsageRated | WalletHeld | WalletReleased) for e in events
    )
