"""Dedup: the one place that says which inputs a wallet has already answered."""

from __future__ import annotations

from engine.domain import initial_state
from engine.domain.dedup import answered, duplicate, late, remember, with_command
from engine.domain.ids import command_key, event_id

from .builders import DAY, T0, Wallets, catalog, cdr, top_up


def test_a_remembered_key_is_a_duplicate_until_two_windows_pass() -> None:
    state = initial_state("w1")
    assert not duplicate(state, "cdr:a")
    seen, before, start, _, retained, watermark = remember(state, "cdr:a", T0)
    assert "cdr:a" in seen and not before and (start, watermark, retained) == (T0, T0, 0)


def test_late_is_before_what_the_generations_still_cover() -> None:
    run = Wallets(catalog(dedup_window=DAY))
    for i in range(4):
        run.when(cdr(f"c{i}", 1, at=T0 + i * DAY))
    assert run.state.retained_since > T0
    assert late(run.state, T0)
    assert not late(run.state, run.state.retained_since)


def test_a_command_is_answered_once_its_event_is_applied() -> None:
    run = Wallets(catalog())
    run.when(top_up("t1", "5"))
    assert answered(run.state, command_key("t1"))
    assert not answered(run.state, command_key("t2"))
    assert run.when(top_up("t1", "5")) == []


def test_with_command_remembers_only_commands() -> None:
    state = initial_state("w1")
    assert with_command(state, event_id("cdr:x", 0), T0) is state.commands
    assert with_command(state, event_id(command_key("t"), 0), T0)[command_key("t")] == T0
