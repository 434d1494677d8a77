"""A decision: one input's events, with the input and its origin, as one value."""

from __future__ import annotations

import msgspec

from engine.domain.decision import NOWHERE, Decision, Origin, decision

from .builders import MB, T0, Wallets, catalog, cdr, top_up


def test_a_decision_carries_its_input_and_origin() -> None:
    item = cdr("c1", MB)
    events = Wallets(catalog()).when(item)
    made = decision("w1", item, events, Origin("cdr.raw", 3, 42))
    assert (made.input, made.events, made.item, made.command) == (
        item.key,
        tuple(events),
        item,
        None,
    )
    assert made.origin == Origin("cdr.raw", 3, 42)
    assert decision("w1", item, events).origin == NOWHERE


def test_a_command_rides_as_command() -> None:
    item = top_up("t1", "5", at=T0)
    made = decision("w1", item, Wallets(catalog()).when(item))
    assert (made.cdr, made.command, made.item) == (None, item, item)


def test_the_wire_form_keeps_its_flat_fields() -> None:
    made = Decision("w1", "cmd:t", "wallet.commands", 0, 5, ())
    assert msgspec.json.decode(msgspec.json.encode(made)) == {
        "wallet_id": "w1",
        "input": "cmd:t",
        "origin_topic": "wallet.commands",
        "origin_partition": 0,
        "origin_offset": 5,
        "events": [],
        "cdr": None,
        "command": None,
        "revision": 0,
    }
