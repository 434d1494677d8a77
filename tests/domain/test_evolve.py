"""evolve: what the decider hands it of a rated record is only ever what the event says."""

from __future__ import annotations

import pytest

from engine.domain import UsageRated
from engine.domain.evolve import evolve
from engine.domain.grants import apply_debits
from engine.domain.ids import input_key

from .builders import MB, T0, Wallets, catalog, cdr, one, plan, rate


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
