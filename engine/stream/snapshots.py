"""Snapshots of a wallet partition, kept in a Faust table so a restart replays little.

A snapshot is the partition's wallet states and decided-origin offsets as they stood after
a given offset of ``wallet.events``. Recovery loads it (Faust restores the table from its
RocksDB files and changelog before the partition's inputs resume) and folds only the
decisions written after that offset. A missing or stale snapshot is never wrong, only
slower: everything after it is still read from ``wallet.events``.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec
from immutables import Map

from ..domain import WalletState


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
) -> bytes:
    snapshot = Snapshot(
        partition,
        events_offset,
        [(topic, p, offset) for (topic, p), offset in sorted(decided.items())],
        [to_record(wallets[w]) for w in sorted(wallets)],
        [(topic, p, sorted(offsets)) for (topic, p), offsets in sorted(recent.items())],
    )
    return _encoder.encode(snapshot)


def decode_snapshot(
    raw: bytes,
) -> tuple[
    int, int, dict[tuple[str, int], int], dict[str, WalletState], dict[tuple[str, int], set[int]]
]:
    s = _decoder.decode(raw)
    wallets = {}
    for record in s.wallets:
        state = from_record(record)
        wallets[state.wallet_id] = state
    decided = {(t, p): o for t, p, o in s.decided}
    return s.partition, s.events_offset, decided, wallets, {(t, p): set(o) for t, p, o in s.recent}
