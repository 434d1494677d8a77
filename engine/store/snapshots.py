"""Wallet snapshots in the event store, so that nothing folds a wallet's whole history.

A snapshot (``base.WalletSnapshot``) is a wallet's state folded from its events up to a
position of the log, with the inputs those events answer (up to a sequence number of
``inputs``) and the latest instant folded. ``take`` writes one for every wallet that has
events since its latest one, at the store's current cut (``rating-engine store snapshot``,
or any process that appends, now and then); ``wallet_state`` is a wallet's state from its
latest snapshot and the events after it, equal to the fold of its whole stream. Replay
starts there (engine/offline/replay_shard.py). Snapshots are derived from the events: one
missing only makes a fold longer, and deleting them all changes no result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

import msgspec

from ..codec import decode_event
from ..domain import Event, WalletState, evolve, initial_state
from ..states import decode_state, encode_state
from .base import EventStore, StoredEvent, WalletSnapshot

BATCH = 1_000
"""Snapshots written per transaction."""

_NONE: Mapping[int, Event] = MappingProxyType({})


class Taken(msgspec.Struct, frozen=True):
    """What ``take`` did: the cut, how many wallets were snapshotted, and how many events it
    folded to do so (those after each wallet's previous snapshot)."""

    position: int
    input_seq: int
    written: int
    folded: int


def fold(
    state: WalletState, events: Sequence[StoredEvent], decoded: Mapping[int, Event] = _NONE
) -> WalletState:
    """``state`` after the stored ``events``; ``decoded``: those of them the caller has
    decoded already, by position, which are not decoded again."""
    for row in events:
        event = decoded.get(row.position)
        state = evolve(state, decode_event(row.payload) if event is None else event)
    return state


def starting_state(wallet_id: str, base: WalletSnapshot | None) -> WalletState:
    """Where a fold of the wallet's events after ``base`` starts: the snapshot's state, or
    the initial state when there is no snapshot (the fold is then of the whole stream)."""
    return initial_state(wallet_id) if base is None else decode_state(base.state)


def wallet_state(
    store: EventStore, wallet_id: str, position: int | None = None
) -> tuple[WalletState, datetime | None, int]:
    """The wallet's state as of ``position`` (default: all it has), the latest instant
    folded, and how many events were folded after its latest snapshot to get there."""
    base = store.latest_snapshot(wallet_id, position)
    state = starting_state(wallet_id, base)
    last_at, after = (None, 0) if base is None else (base.last_at, base.position)
    tail = [
        e for e in store.read_stream(wallet_id, after) if position is None or e.position <= position
    ]
    if tail:
        state = fold(state, tail)
        last_at = max([e.at for e in tail] + ([last_at] if last_at is not None else []))
    return state, last_at, len(tail)


def take(store: EventStore, wallets: Sequence[str] | None = None) -> Taken:
    """A snapshot of each wallet (of ``wallets``, or all) with events after its latest one,
    at the store's current cut."""
    position, input_seq = store.marks()
    written = folded = 0
    batch: list[WalletSnapshot] = []
    for wallet_id in store.wallets() if wallets is None else wallets:
        state, last_at, count = wallet_state(store, wallet_id, position)
        if not count:
            continue  # nothing since its latest snapshot (or no events at all)
        folded += count
        batch.append(WalletSnapshot(wallet_id, position, input_seq, last_at, encode_state(state)))
        if len(batch) >= BATCH:
            written += store.put_snapshots(batch)
            batch = []
    written += store.put_snapshots(batch)
    return Taken(position, input_seq, written, folded)
