"""An anchor: each stream's head taken at one moment and kept outside the store, so that the
newest events of a stream deleted (or rewritten) and its head set back are found; with a
chain key, a forged anchor is refused too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import msgspec
import pytest

from engine.store import EventStore, Problem, StoredEvent, StoreError
from engine.store.anchor import Anchor, check, load, take

KEY = b"0123456789abcdef0123456789abcdef-anchor-test"
AT = datetime(2026, 1, 1, tzinfo=UTC)


class Streams:
    """The three reads an anchor makes, over streams held in memory."""

    def __init__(self, streams: dict[str, list[StoredEvent]]) -> None:
        self.streams = streams

    def position(self) -> int:
        return max((e.position for s in self.streams.values() for e in s), default=0)

    def wallets(self) -> list[str]:
        return sorted(self.streams)

    def read_stream(self, wallet_id: str) -> list[StoredEvent]:
        return self.streams.get(wallet_id, [])


def event(wallet: str, position: int, version: int, digest: str | None = None) -> StoredEvent:
    name = f"{wallet}-{version}"
    return StoredEvent(position, wallet, version, name, "X", AT, b"{}", digest or f"h:{name}")


def store() -> Streams:
    return Streams(
        {
            "w1": [event("w1", 1, 1), event("w1", 3, 2), event("w1", 4, 3)],
            "w2": [event("w2", 2, 1)],
        }
    )


def test_the_heads_are_each_streams_last_event() -> None:
    anchor = take(cast(EventStore, store()), None)
    assert anchor == Anchor(4, {"w1": (3, "h:w1-3"), "w2": (1, "h:w2-1")})


def test_later_events_are_not_the_anchors_concern() -> None:
    held = store()
    anchor = take(cast(EventStore, held), KEY)
    held.streams["w2"].append(event("w2", 5, 2))
    held.streams["w3"] = [event("w3", 6, 1)]
    assert check(cast(EventStore, held), anchor) == []


def test_a_stream_cut_back_or_rewritten_is_found() -> None:
    held = store()
    anchor = take(cast(EventStore, held), None)
    del held.streams["w1"][-1]  # the newest event gone, the head set back
    held.streams["w2"][0] = event("w2", 2, 1, digest="h:forged")
    problems = check(cast(EventStore, held), anchor)
    assert [(p.wallet_id, p.version, p.kind) for p in problems] == [
        ("w1", 3, "truncated"),
        ("w2", 1, "rewritten"),
    ]
    assert problems[0] == Problem(
        "w1", 3, "", "truncated", "the anchor has version 3; the stream ends at 2"
    )


def test_a_keyed_anchor_reads_back_with_its_key_only() -> None:
    anchor = take(cast(EventStore, store()), KEY)
    data = msgspec.json.encode(anchor)
    assert anchor.mac.startswith("hmac-sha256:")
    assert load(data, KEY) == anchor
    with pytest.raises(StoreError, match="does not match"):
        load(data, KEY[::-1])
    with pytest.raises(StoreError, match="the anchor is keyed"):
        load(data, None)


def test_a_head_moved_in_a_keyed_anchor_is_a_forgery() -> None:
    anchor = take(cast(EventStore, store()), KEY)
    forged = Anchor(anchor.position, {**anchor.heads, "w1": (2, "h:w1-2")}, anchor.mac)
    with pytest.raises(StoreError, match="forged"):
        load(msgspec.json.encode(forged), KEY)


def test_an_unkeyed_anchor_is_refused_when_a_key_is_set() -> None:
    data = msgspec.json.encode(take(cast(EventStore, store()), None))
    assert load(data, None).mac == ""
    with pytest.raises(StoreError, match="no MAC"):
        load(data, KEY)
    with pytest.raises(StoreError, match="not an anchor file"):
        load(b"[1, 2]", None)
