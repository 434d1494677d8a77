"""Idempotency inside a wallet: which inputs it has already answered.

A CDR's key is remembered in two rotating generations (``keylog.KeyLog``) that together
cover at least the dedup window (``remember``); a CDR older than what they still cover is
late, never a second charge. A command that moved money is remembered by its key for good
(``answered``), so a retried top-up credits once. ``evolve`` writes both; the decider asks
through ``duplicate``, ``late`` and ``answered`` before deciding anything.
"""

from __future__ import annotations

from immutables import Map

from .ids import input_key, is_command
from .keylog import NO_KEYS, KeyLog
from .state import WalletState


def duplicate(state: WalletState, key: str) -> bool:
    """Whether the CDR ``key`` was rated within the window."""
    return key in state.seen or key in state.seen_before


def late(state: WalletState, ts: int) -> bool:
    """Whether a CDR of instant ``ts`` is older than the window can still tell apart."""
    return ts < state.retained_since


def answered(state: WalletState, key: str) -> bool:
    """Whether the command ``key`` was already decided (its retry is a no-op)."""
    return key in state.commands


def with_command(state: WalletState, event_id: str, ts: int) -> Map[str, int]:
    """The commands map once the event ``event_id`` is applied: its command, if it came
    from one, is remembered."""
    if not is_command(event_id):
        return state.commands
    return state.commands.set(input_key(event_id), ts)


Generations = tuple[KeyLog, KeyLog, int, int, int, int]
"""The dedup fields of ``WalletState`` after remembering one key, in field order:
``seen``, ``seen_before``, ``generation_start``, ``before_start``, ``retained_since``,
``watermark``."""


def remember(state: WalletState, key: str, ts: int) -> Generations:
    """Add a CDR key to the dedup generations, rotating them as the watermark moves.

    A generation holds the keys rated while the watermark was in ``[start, next start)`` and
    lasts at least one window. Two are kept; when one is dropped, ``retained_since`` becomes
    the start of the oldest one kept. A record's original (if any) was rated when the
    watermark was already at or past the record's own time, so for a record whose time is
    at or after ``retained_since`` the original is still on hand; an older record is
    rejected as late. Pruning therefore never lets a duplicate through.
    """
    window = state.dedup_window
    watermark = state.watermark if state.watermark >= ts else ts
    seen, before, start = state.seen, state.seen_before, state.generation_start
    before_start, retained = state.before_start, state.retained_since
    if start == 0:
        start = watermark
    elif watermark >= start + window:
        if watermark < start + 2 * window:
            if before_start:  # the previous generation is dropped now
                retained = start
            before, before_start = seen, start
        else:  # a jump of two windows: both generations go; every key they held was
            # rated at or before the previous watermark, so only older records are at risk
            before, before_start, retained = NO_KEYS, 0, state.watermark + 1
        seen = NO_KEYS
        start = watermark
    return seen.set(key, ts), before, start, before_start, retained, watermark
