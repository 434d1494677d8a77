"""An anchor: each stream's head (version and hash) at one moment, kept outside the store.

The chain, keyed or not, is all inside the database: whoever can write it can delete the
newest events of a stream and set the stream's head back to an older, genuine link, and
every remaining hash still verifies. An anchor taken earlier and kept elsewhere (an object
store with retention, a ticket, another database) catches that: every anchored head must
still be in the store, at the same version, with the same hash. Events stored after the
anchor are not its business. With a chain key the anchor carries an HMAC, so a forged
anchor file is refused too.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from ..codec import encode
from .base import EventStore, Problem, StoreError


class Anchor(msgspec.Struct, frozen=True):
    position: int
    heads: dict[str, tuple[int, str]]
    """Wallet id → (version, hash) of its last event."""
    mac: str = ""
    """``hmac-sha256:<hex>`` over position and heads with the chain key; empty without one."""


def _mac(position: int, heads: dict[str, tuple[int, str]], key: bytes) -> str:
    body = encode([position, sorted((w, v, h) for w, (v, h) in heads.items())])
    return "hmac-sha256:" + hmac.new(key, body, hashlib.sha256).hexdigest()


def take(store: EventStore, key: bytes | None) -> Anchor:
    """The store's heads now (reads every stream: as costly as ``verify``)."""
    position = store.position()
    heads: dict[str, tuple[int, str]] = {}
    for wallet in store.wallets():
        stream = [e for e in store.read_stream(wallet) if e.position <= position]
        if stream:
            heads[wallet] = (stream[-1].version, stream[-1].hash)
    return Anchor(position, heads, _mac(position, heads, key) if key else "")


def load(data: bytes, key: bytes | None) -> Anchor:
    """An anchor file; ``StoreError`` if it is not one, or its MAC does not match the key."""
    try:
        anchor = msgspec.json.decode(data, type=Anchor)
    except msgspec.DecodeError as exc:
        raise StoreError(f"not an anchor file: {exc}") from None
    if anchor.mac:
        if key is None:
            raise StoreError("the anchor is keyed: set RATING_CHAIN_KEY or RATING_CHAIN_KEY_FILE")
        if not hmac.compare_digest(anchor.mac, _mac(anchor.position, anchor.heads, key)):
            raise StoreError("the anchor's MAC does not match: forged, or another chain key")
    elif key is not None:
        raise StoreError("the anchor has no MAC but a chain key is set: it could be forged")
    return anchor


def check(store: EventStore, anchor: Anchor) -> list[Problem]:
    """Problems of the store against ``anchor``: anchored events gone or changed."""
    problems: list[Problem] = []
    for wallet, (version, digest) in sorted(anchor.heads.items()):
        stream = store.read_stream(wallet)
        found = next((e for e in stream if e.version == version), None)
        if found is None:
            last = stream[-1].version if stream else 0
            problems.append(
                Problem(
                    wallet,
                    version,
                    "",
                    "truncated",
                    f"the anchor has version {version}; the stream ends at {last}",
                )
            )
        elif not hmac.compare_digest(found.hash, digest):
            problems.append(
                Problem(
                    wallet,
                    version,
                    found.event_id,
                    "rewritten",
                    f"version {version} differs from the anchor: the stream was rewritten",
                )
            )
    return problems
