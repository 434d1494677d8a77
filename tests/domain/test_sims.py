"""A wallet's SIMs: whether a SIM is in this wallet is asked of ``sim`` (and ``sim_at`` for
"in it and active then"), whatever the catalog or the commands say."""

from __future__ import annotations

from engine.domain import initial_state
from engine.domain.sims import sim, sim_at

from .builders import SIM1, SIM2, T0, Wallets, attach, catalog, detach, sub, wallet


def test_a_sim_is_in_the_wallet_of_its_subscription_only() -> None:
    cat = catalog(subs=[sub(SIM1), sub(SIM2, wallet="w2")], wallets=[wallet("w1"), wallet("w2")])
    state = initial_state("w1")
    assert sim(state, cat, SIM1) is not None
    assert sim(state, cat, SIM2) is None
    assert sim_at(state, cat, SIM1, T0) is not None


def test_a_detached_sim_is_not_active_after_it_left() -> None:
    run = Wallets(catalog()).given(detach("d1", SIM1, at=T0 + 10))
    assert sim_at(run.state, run.catalog, SIM1, T0 + 9) is not None
    assert sim_at(run.state, run.catalog, SIM1, T0 + 10) is None
    assert sim(run.state, run.catalog, SIM1) is not None  # still the wallet's, ended


def test_an_attached_sim_is_active_from_its_command() -> None:
    run = Wallets(catalog(subs=[])).given(attach("a1", SIM2, at=T0 + 5))
    assert sim_at(run.state, run.catalog, SIM2, T0 + 4) is None
    assert sim_at(run.state, run.catalog, SIM2, T0 + 5) is not None
