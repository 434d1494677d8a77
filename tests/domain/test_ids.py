"""Ids: made and read in one place, and stable (a retried input must give the same ids)."""

from __future__ import annotations

from engine.domain import ids


def test_input_keys_and_event_ids_read_back() -> None:
    key = ids.cdr_key("op-a", "c1")
    assert key == "cdr:op-a/c1" and ids.cdr_key(None, "c1") == "cdr:c1"
    assert ids.is_cdr(key) and not ids.is_command(key)
    assert ids.input_key(ids.event_id(key, 3)) == key
    assert ids.input_key(ids.rejection_id(key, "late")) == key
    command = ids.command_key("t1")
    assert command == "cmd:t1" and ids.is_command(ids.event_id(command, 0))


def test_the_commands_the_engine_sends_itself() -> None:
    cdr = ids.cdr_key(None, "c1")
    adjustment = ids.adjustment_id(cdr, 2)
    assert adjustment == "adj:cdr:c1:2"
    assert ids.adjusted_cdr_key(ids.event_id(ids.command_key(adjustment), 0)) == cdr
    assert ids.routed_command_id("cdr:c1#0") == "route:cdr:c1#0"


def test_openings_and_charge_refs() -> None:
    assert (ids.opening_id("w1"), ids.opening_grant_id("w1", 0)) == ("open:w1#0", "open:w1/0")
    assert ids.addon_ref("8900", "gps") == "8900/gps"
    assert (ids.pool_ref("p1"), ids.plan_ref("basic")) == ("pool:p1", "plan:basic")
