"""A wallet's state as bytes: the one encoding of a ``WalletState`` that is kept anywhere.

Snapshots on ``wallet.snapshots`` (engine/stream/snapshots.py) and in the event store
(engine/store, ``wallet_snapshots``) both write a state through ``to_record`` /
``from_record``: ``StateRecord`` is ``WalletState`` with every persistent map (a ``Map``, or
a dedup generation's ``KeyLog``, in the order its keys came) as a list of pairs, derived
from the type itself, so it cannot drift from it. msgpack, array-like: a field added at the
end of ``WalletState`` with a default still reads an older record.
"""

from __future__ import annotations

import sys
import typing
from typing import Any

import msgspec
from immutables import Map

from .domain import WalletState
from .domain.catalog import Subscription
from .domain.keylog import KeyLog


def _record_type(hint: Any) -> Any:
    """The encodable form of a state field: a persistent map becomes a list of pairs."""
    if typing.get_origin(hint) is Map:
        key, value = typing.get_args(hint)
        return list[tuple[key, value]]  # type: ignore[valid-type]
    if hint is KeyLog:
        return list[tuple[str, int]]
    return hint


_HINTS = typing.get_type_hints(WalletState)
_MAPS = frozenset(name for name, hint in _HINTS.items() if typing.get_origin(hint) is Map)
_LOGS = frozenset(name for name, hint in _HINTS.items() if hint is KeyLog)

StateRecord = msgspec.defstruct(
    "StateRecord",
    [(name, _record_type(hint)) for name, hint in _HINTS.items()],
    array_like=True,
    gc=False,
)
"""WalletState with every ``Map`` as pairs: derived from WalletState, so it cannot drift."""

DEDUP_FIELDS = ("seen", "seen_before", "commands")
"""The fields holding input ids (the dedup window, the commands that moved money): the
part of a state that grows with its traffic, which a snapshot may keep apart
(`split_ids`)."""

MAP_ORDER = (
    "attached",
    "past",
    "detached",
    "plan_changes",
    "catalog_until",
    "recurring",
    "pool_used",
    "pool_tier",
    "pool_overage",
    "tier_used",
)
"""The maps a snapshot may write apart from a wallet's record when they are large: every
``Map`` of ``WalletState`` but the commands (ids), those that change least first."""

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(StateRecord)
_pairs = {name: msgspec.msgpack.Decoder(_record_type(_HINTS[name])) for name in MAP_ORDER}


def to_record(state: WalletState) -> Any:
    values = {
        name: (
            list(getattr(state, name).items())
            if name in _MAPS or name in _LOGS
            else getattr(state, name)
        )
        for name in _HINTS
    }
    return StateRecord(**values)


def from_record(record: Any) -> WalletState:
    # The SIMs' maps are built once, below, of their subscriptions with shared strings.
    values: dict[str, Any] = {
        name: _restored(name, getattr(record, name))
        for name in _HINTS
        if name != "attached" and name != "past"
    }
    wallet_id = values["wallet_id"]
    values["attached"] = Map(
        (iccid, _shared(sub, wallet_id, iccid)) for iccid, sub in record.attached
    )
    values["past"] = Map(
        (iccid, tuple(_shared(sub, wallet_id, iccid) for sub in stints))
        for iccid, stints in record.past
    )
    return WalletState(**values)


def _restored(name: str, value: Any) -> Any:
    """A field of a state record as ``WalletState`` holds it."""
    if name in _MAPS:
        return Map(value)
    if name in _LOGS:
        return KeyLog.of(value)
    return value


def _shared(sub: Subscription, wallet_id: str, iccid: str) -> Subscription:
    """``sub`` with its strings shared, not one copy each per SIM as decoding makes them:
    its ICCID is the map's key, its wallet the state's id, its plan and pool interned (a
    restored million SIMs hold a few names, not millions of copies). Built field by field,
    about three times cheaper than `msgspec.structs.replace` (once per SIM at start-up);
    `tests/test_states.py` pins the fields, so a new one cannot be dropped here."""
    addons = sub.addons
    return Subscription(
        iccid if sub.iccid == iccid else sub.iccid,
        wallet_id if sub.wallet == wallet_id else sub.wallet,
        sys.intern(sub.plan),
        None if sub.pool is None else sys.intern(sub.pool),
        sub.active_from,
        sub.active_to,
        tuple(map(sys.intern, addons)) if addons else addons,
    )


def encode_state(state: WalletState) -> bytes:
    return _encoder.encode(to_record(state))


def decode_state(raw: bytes) -> WalletState:
    return from_record(_decoder.decode(raw))


def split_ids(state: WalletState) -> tuple[WalletState, list[tuple[int, str, int]]]:
    """The state without its input ids, and the ids as ``(field, key, instant)``, ``field``
    indexing `DEDUP_FIELDS`."""
    ids = [
        (field, key, at)
        for field, name in enumerate(DEDUP_FIELDS)
        for key, at in getattr(state, name).items()
    ]
    return without_ids(state), ids


def without_ids(state: WalletState) -> WalletState:
    """The state without its input ids (`split_ids`)."""
    return without(state, DEDUP_FIELDS)


def without(state: WalletState, names: typing.Iterable[str]) -> WalletState:
    """The state with the maps and logs ``names`` empty."""
    empty: dict[str, Any] = {name: _restored(name, ()) for name in names}
    return msgspec.structs.replace(state, **empty)


def encode_pairs(pairs: list[tuple[Any, Any]]) -> bytes:
    """Entries of one of the maps in `MAP_ORDER`, as a state record holds them."""
    return _encoder.encode(pairs)


def decode_pairs(name: str, raw: bytes) -> list[tuple[Any, Any]]:
    """`encode_pairs`' entries of map ``name`` (``KeyError`` for a map not in `MAP_ORDER`,
    ``msgspec.DecodeError`` for bytes that are not its entries)."""
    return _pairs[name].decode(raw)


def join_ids(state: WalletState, ids: typing.Iterable[tuple[int, str, int]]) -> WalletState:
    """``state`` with the ids `split_ids` took out of it."""
    maps: list[dict[str, int]] = [{} for _ in DEDUP_FIELDS]
    for field, key, at in ids:
        maps[field][key] = at
    values: dict[str, Any] = {
        name: _restored(name, m.items()) for name, m in zip(DEDUP_FIELDS, maps, strict=True)
    }
    return msgspec.structs.replace(state, **values)
