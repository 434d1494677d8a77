"""evolve: what the decider hands it of a rated record is only ever what the event says."""

from __future__ import annotations

import msgspec
import pytest

from engine.domain import UsageRated, initial_state
from engine.domain.events import (
    CatalogAdopted,
    WalletClosed,
    WalletHeld,
    WalletOpened,
    WalletReleased,
    WalletTerms,
)
from engine.domain.evolve import evolve
from engine.domain.grants import apply_debits
from engine.domain.ids import input_key

from .builders import MB, T0, Wallets, catalog, cdr, dt, one, plan, rate


@pytest.mark.parametrize(
    ("source", "offset"), [(None, 0), ("probe#2", 0), ("gw-1", 330), (None, -480)]
)
def test_a_rated_record_applied_from_what_the_decider_holds_is_as_applied_from_the_event(
    source: str | None, offset: int
) -> None:
    wallets = Wallets(catalog(plans=[plan(rates={"data": {"EU": rate("0.01", MB)}})]))
    wallets.given(cdr("c0", MB))
    before = wallets.state
    event = one(
        wallets.when(cdr("c1", 3 * MB, at=T0 + 60, source=source, offset=offset)), UsageRated
    )
    grants = apply_debits(before.grants, event.debits)
    key = input_key(event.id)
    assert key == ("cdr:" + (f"{source}/c1" if source else "c1"))
    from_event = evolve(before, event)
    assert evolve(before, event, grants, T0 + 60, key) == from_event
    assert from_event.seen[key] == T0 + 60


def test_provisioning_events_set_the_wallets_status_and_nothing_else() -> None:
    at = dt(T0)
    terms = WalletTerms("Nine", "USD", 1, 0, 2, (5,), 9)
    s = evolve(initial_state("w9"), WalletOpened("open:w9#0", "w9", at, "USD", 60, (), terms, 4))
    assert (s.opened, s.terms, s.revision, s.dedup_window) == (True, terms, 4, 60)
    plain = evolve(initial_state("w1"), WalletOpened("open:w1#0", "w1", at, "EUR", 60))
    assert (plain.terms, plain.revision) == (None, 0)
    held = evolve(s, WalletHeld("cmd:s#0", "w9", at, "why"))
    assert held.held and not held.suspended  # the suspension is its own event
    assert evolve(held, WalletReleased("cmd:r#0", "w9", at, "ok")) == s
    assert evolve(s, CatalogAdopted("cmd:a#0", "w9", at, 7, "d")).revision == 7
    closed = evolve(s, WalletClosed("cmd:x#0", "w9", at, "bye"))
    assert closed.closed and msgspec.structs.replace(closed, closed=False) == s
