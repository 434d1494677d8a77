"""Refusals: one exception, one rejection event per refused input."""

from __future__ import annotations

from engine.domain.events import CdrRejected, CommandRejected
from engine.domain.refusal import Refused, rejection

from .builders import MB, Wallets, catalog, cdr, top_up


def test_a_refusal_becomes_the_inputs_one_rejection_event() -> None:
    item = cdr("c1", MB)
    event = rejection("w1", item, "unknown_zone", "network 999-99 is in no zone")
    assert isinstance(event, CdrRejected)
    assert (event.id, event.reason, event.cdr_id) == ("cdr:c1#unknown_zone", "unknown_zone", "c1")
    command = rejection("w1", top_up("t1", "5"), "invalid_amount", "no")
    assert isinstance(command, CommandRejected) and command.id == "cmd:t1#invalid_amount"


def test_a_rule_that_refuses_decides_nothing_else() -> None:
    events = Wallets(catalog()).when(cdr("c1", MB, network="999-99"))
    assert [type(e) for e in events] == [CdrRejected]
    refusal = Refused("unknown_zone", "detail")
    assert (refusal.reason, refusal.detail) == ("unknown_zone", "detail")
