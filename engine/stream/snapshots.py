"""Snapshots of a wallet partition, kept on ``wallet.snapshots`` so a restart replays little.

A snapshot is the partition's wallet states and decided-origin offsets as they stood after
a given offset of ``wallet.events``, and the id of the decision at that offset. The owner
writes it in the partition's transaction (fencing.py), so only the owner's ever lands.
Recovery reads the latest committed one, checks that the decision it names is at its
offset of the log (processor.recover), and folds only the decisions written after it. A
missing or older snapshot is never wrong, only slower: everything after it is still read
from ``wallet.events``; one that does not match the log is not used.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec
from immutables import Map

from ..domain import WalletState
from .processor import PartitionState


def _record_type(hint: Any) -> Any:
    """The encodable form of a state field: a persistent map becomes a list of pairs."""
    if typing.get_origin(hint) is Map:
        key, value = typing.get_args(hint)
        return list[tuple[key, value]]  # type: ignore[valid-type]
    return hint


_HINTS = typing.get_type_hints(WalletState)
_MAPS = frozenset(name for name, hint in _HINTS.items() if typing.get_origin(hint) is Map)

StateRecord = msgspec.defstruct(
    "StateRecord",
    [(name, _record_type(hint)) for name, hint in _HINTS.items()],
    array_like=True,
    gc=False,
)
"""WalletState with every ``Map`` as pairs: derived from WalletState, so it cannot drift."""


class Snapshot(msgspec.Struct, array_like=True, gc=False):
    partition: int
    events_offset: int
    """The last ``wallet.events`` offset (of this partition) the snapshot includes."""
    decided: list[tuple[str, int, int]]
    """(origin topic, origin partition, last offset decided)."""
    wallets: list[StateRecord]  # type: ignore[valid-type]
    recent: list[tuple[str, int, list[int]]] = []
    """(origin topic, origin partition, the offsets decided within the reorder window)."""
    last_decision: str = ""
    """The id of the decision at ``events_offset`` (processor.decision_id)."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


def to_record(state: WalletState) -> Any:
    values = {
        name: (list(getattr(state, name).items()) if name in _MAPS else getattr(state, name))
        for name in _HINTS
    }
    return StateRecord(**values)


def from_record(record: Any) -> WalletState:
    values: dict[str, Any] = {
        name: (Map(getattr(record, name)) if name in _MAPS else getattr(record, name))
        for name in _HINTS
    }
    return WalletState(**values)


def encode_snapshot(
    partition: int,
    events_offset: int,
    decided: dict[tuple[str, int], int],
    wallets: dict[str, WalletState],
    recent: dict[tuple[str, int], set[int]],
    last_decision: str = "",
) -> bytes:
    snapshot = Snapshot(
        partition,
        events_offset,
        [(topic, p, offset) for (topic, p), offset in sorted(decided.items())],
        [to_record(wallets[w]) for w in sorted(wallets)],
        [(topic, p, sorted(offsets)) for (topic, p), offsets in sorted(recent.items())],
        last_decision,
    )
    return _encoder.encode(snapshot)


def _unpack(
    s: Snapshot,
) -> tuple[dict[tuple[str, int], int], dict[str, WalletState], dict[tuple[str, int], set[int]]]:
    wallets = {}
    for record in s.wallets:
        state = from_record(record)
        wallets[state.wallet_id] = state
    decided = {(t, p): o for t, p, o in s.decided}
    return decided, wallets, {(t, p): set(o) for t, p, o in s.recent}


def decode_snapshot(
    raw: bytes,
) -> tuple[
    int, int, dict[tuple[str, int], int], dict[str, WalletState], dict[tuple[str, int], set[int]]
]:
    s = _decoder.decode(raw)
    decided, wallets, recent = _unpack(s)
    return s.partition, s.events_offset, decided, wallets, recent


def encode_partition(partition: int, part: PartitionState) -> bytes:
    """A snapshot of ``part`` as it stands now."""
    return encode_snapshot(
        partition, part.events_offset, part.decided, part.wallets, part.recent, part.last_decision
    )


def decode_partition(raw: bytes) -> tuple[int, PartitionState]:
    """The partition number and state a snapshot holds (with the decision it names)."""
    s = _decoder.decode(raw)
    decided, wallets, recent = _unpack(s)
    return s.partition, PartitionState(wallets, decided, s.events_offset, recent, s.last_decision)
