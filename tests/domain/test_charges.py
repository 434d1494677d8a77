"""Money through a wallet, one rule at a time on a decision being made (``Draft``): the
wallet opened once, a charge settled and its levels checked, a credit that re-arms them, and
the restart fees a resume would charge. (The same rules through ``decide``: test_usage.py,
test_account.py, test_grants.py.)"""

from __future__ import annotations

from engine.domain import Catalog
from engine.domain.charges import charge, credit, open_wallet, restart_fees
from engine.domain.draft import Draft
from engine.domain.events import (
    Charged,
    GrantAdded,
    SimsBarred,
    ThresholdCrossed,
    WalletOpened,
    WalletSuspended,
)
from engine.domain.ids import plan_ref
from engine.domain.state import initial_state

from .builders import (
    EUR,
    SIM1,
    SIM2,
    SIM3,
    SPLITS,
    T0,
    catalog,
    dt,
    opening,
    plan,
    sub,
    types,
    version,
    wallet,
)

AT = dt(T0)


def draft(cat: Catalog) -> Draft:
    return Draft(initial_state("w1"), "k", cat, cat.wallets["w1"])


def test_the_wallet_opens_once_with_its_opening_grants() -> None:
    d = draft(catalog(wallets=[wallet(opening=[opening("10"), opening("5", kind="promo")])]))
    open_wallet(d, AT)
    open_wallet(d, AT)
    [opened] = d.events
    assert isinstance(opened, WalletOpened)
    assert [(g.kind, g.amount) for g in opened.grants] == [
        ("opening", EUR("10")),
        ("promo", EUR("5")),
    ]
    assert d.state.balance == EUR("15")


def test_a_charge_is_split_and_crosses_thresholds_down_to_suspension() -> None:
    cat = catalog(wallets=[wallet(opening=[opening("10")], thresholds=["5"], suspend_at=EUR("1"))])
    d = draft(cat)
    open_wallet(d, AT)
    charge(d, AT, T0, "mrc", SIM1, EUR("9"), SPLITS, "2026-01-01")
    assert types(d.events) == [
        "WalletOpened",
        "Charged",
        "ThresholdCrossed",
        "WalletSuspended",
        "SimsBarred",
    ]
    charged = d.events[1]
    assert isinstance(charged, Charged)
    assert sum(line.amount for line in charged.splits) == EUR("9")
    assert isinstance(d.events[2], ThresholdCrossed) and d.events[2].level == EUR("5")
    assert isinstance(d.events[3], WalletSuspended)
    assert isinstance(d.events[4], SimsBarred) and d.events[4].iccids == (SIM1,)


def test_a_credit_re_arms_the_thresholds_it_lifts_the_balance_above() -> None:
    cat = catalog(wallets=[wallet(opening=[opening("10")], thresholds=["5"])])
    d = draft(cat)
    open_wallet(d, AT)
    charge(d, AT, T0, "mrc", SIM1, EUR("6"), SPLITS)
    credit(d, AT, T0, "top_up", EUR("2"), 50, None)
    added = d.events[-1]
    assert isinstance(added, GrantAdded) and added.rearmed == (EUR("5"),)
    assert d.state.balance == EUR("6")


def test_restart_fees_are_per_sim_or_once_per_plan() -> None:
    per_sim = plan("a", restart_fee="1", fee_splits=SPLITS[:1])
    per_wallet = plan("b", version(restart_fee="3", restart_fee_per="wallet"))
    free = plan("c")
    subs = [
        sub(SIM1, plan="a"),
        sub(SIM2, plan="b"),
        sub(SIM3, plan="b"),
        sub("8900000000000000004", plan="c"),
    ]
    d = draft(catalog(plans=[per_sim, per_wallet, free], subs=subs))
    fees = restart_fees(d, (SIM1, SIM2, SIM3, "8900000000000000004"), T0)
    assert fees == [(SIM1, EUR("1"), SPLITS[:1]), (plan_ref("b"), EUR("3"), SPLITS)]
