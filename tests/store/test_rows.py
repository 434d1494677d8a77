"""The rows a batch becomes, whichever backend writes them: each event once, chained after
its stream's head; each input once per wallet."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.codec import encode
from engine.domain.commands import TopUp
from engine.domain.events import WalletOpened
from engine.store.chain import EMPTY, GENESIS, Head, link
from engine.store.rows import chain_events, first_of_each, input_rows

AT = datetime(2026, 1, 5, tzinfo=UTC)


def opened(event_id: str, wallet: str) -> WalletOpened:
    return WalletOpened(event_id, wallet, AT, "EUR", 86400)


def test_an_event_given_twice_in_a_batch_is_kept_once_in_order() -> None:
    a, b = opened("a", "w1"), opened("b", "w2")
    assert first_of_each([a, b, a, b]) == [a, b]


def test_events_are_positioned_after_the_store_and_chained_per_stream() -> None:
    heads = {"w1": Head(4, "f" * 64)}
    events = [opened("a", "w1"), opened("b", "w2"), opened("c", "w1")]
    rows = chain_events(events, heads, after=10)
    assert [(r.position, r.wallet_id, r.version) for r in rows] == [
        (11, "w1", 5),
        (12, "w2", 1),
        (13, "w1", 6),
    ]
    assert [r.prev_hash for r in rows] == ["f" * 64, GENESIS, rows[0].hash]
    assert rows[0].hash == link("f" * 64, "a", 5, encode(events[0]))
    assert (rows[0].type, rows[0].payload) == ("WalletOpened", encode(events[0]))
    assert heads == {"w1": Head(6, rows[2].hash), "w2": Head(1, rows[1].hash)}


def test_with_a_key_every_hash_is_keyed() -> None:
    key = b"k" * 32
    [row] = chain_events([opened("a", "w1")], {}, after=0, key=key)
    assert (
        row.hash
        == link(EMPTY.hash, "a", 1, row.payload, key)
        != link(EMPTY.hash, "a", 1, row.payload)
    )


def test_an_input_is_one_row_per_wallet_and_key() -> None:
    top = TopUp(command_id="t1", wallet_id="w1", at=AT, amount="5", currency="EUR")
    rows = input_rows([("w1", top), ("w1", top), ("w2", top)])
    assert [(r.wallet_id, r.key, r.at) for r in rows] == [("w1", top.key, AT), ("w2", top.key, AT)]
    assert rows[0].payload == encode(top)
