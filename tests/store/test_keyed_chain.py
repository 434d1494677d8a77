"""The keyed hash chain, on SQLite and PostgreSQL: someone with write access to the database
but not the key edits an event and re-chains the stream; ``verify`` with the key finds it,
where the unkeyed chain alone would not."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.store import EventStore, StoredEvent, StoreError, open_store
from engine.store.chain import GENESIS, KEYED, chain_key, link

from .helpers import Rated, tamper

KEY = b"0123456789abcdef0123456789abcdef-test-key"
OTHER_KEY = b"fedcba9876543210fedcba9876543210-guessed"

pytestmark = pytest.mark.chaos


def _forge(payload: bytes) -> bytes:
    # The same event, one byte more: a charge an attacker wants to change.
    return payload.replace(b'"wallet_id"', b'"wallet_id" ', 1)


def rechain(
    url: str,
    stream: list[StoredEvent],
    index: int,
    key: bytes | None,
    edit: Callable[[bytes], bytes] = _forge,
) -> None:
    """What an administrator without the key can do: edit ``stream[index]`` and recompute
    its hash, every later hash of the stream and the stream's head, with ``key`` (None: the
    plain sha256 chain)."""
    prev = stream[index - 1].hash if index else GENESIS
    statements: list[tuple[str, tuple[object, ...]]] = []
    for n, event in enumerate(stream[index:]):
        payload = edit(event.payload) if n == 0 else event.payload
        digest = link(prev, event.event_id, event.version, payload, key)
        statements.append(
            (
                "UPDATE events SET payload = ?, prev_hash = ?, hash = ? WHERE position = ?",
                (payload, prev, digest, event.position),
            )
        )
        prev = digest
    statements.append(
        ("UPDATE streams SET hash = ? WHERE wallet_id = ?", (prev, stream[0].wallet_id))
    )
    tamper(url, statements)


def longest(store: EventStore) -> list[StoredEvent]:
    return max((store.read_stream(w) for w in store.wallets()), key=len)


def fill(url: str, rated: Rated, key: bytes | None, start: int = 0, stop: int = 800) -> None:
    with closing(open_store(url, chain_key=key)) as store:
        for events, inputs in rated.decisions[start:stop]:
            store.append(events, inputs)


def test_a_keyed_store_verifies_with_its_key(store_url: str, rated: Rated) -> None:
    fill(store_url, rated, KEY)
    with closing(open_store(store_url, chain_key=KEY)) as store:
        stream = longest(store)
        assert all(e.hash.startswith(KEYED) for e in stream)
        assert store.verify() == []
    with closing(open_store(store_url, chain_key=OTHER_KEY)) as store:
        assert {p.kind for p in store.verify()} == {"altered"}


def test_a_rechained_forgery_passes_the_plain_chain_but_not_the_keyed_one(
    store_url: str, rated: Rated
) -> None:
    # The weakness: without a key, re-chaining after an edit leaves nothing to find.
    fill(store_url, rated, None)
    with closing(open_store(store_url, chain_key=None)) as store:
        rechain(store_url, longest(store), 4, None)
        assert store.verify() == []


def test_an_unkeyed_rechain_of_a_keyed_store_is_found(store_url: str, rated: Rated) -> None:
    fill(store_url, rated, KEY)
    with closing(open_store(store_url, chain_key=KEY)) as store:
        stream = longest(store)
        rechain(store_url, stream, 4, None)
        problems = store.verify()
    assert problems
    assert {p.wallet_id for p in problems} == {stream[0].wallet_id}
    assert min(p.version for p in problems) == stream[4].version
    assert {p.kind for p in problems} == {"downgraded"}


def test_a_rechain_with_a_guessed_key_is_found(store_url: str, rated: Rated) -> None:
    fill(store_url, rated, KEY)
    with closing(open_store(store_url, chain_key=KEY)) as store:
        stream = longest(store)
        rechain(store_url, stream, 4, OTHER_KEY)
        problems = store.verify()
    kinds = {(p.version, p.kind) for p in problems}
    assert (stream[4].version, "altered") in kinds
    assert {p.kind for p in problems} == {"altered"}


def test_a_keyed_store_without_the_key_is_not_called_intact(
    store_url: str, rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(store_url, rated, KEY, stop=50)
    assert main(["store", "verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert "keyed" in out and "RATING_CHAIN_KEY" in out
    with closing(open_store(store_url, chain_key=None)) as store:
        problems = store.verify()
        assert [p.kind for p in problems] == ["keyed"] * len(store.wallets())


def test_a_store_from_before_the_key_verifies_up_to_its_last_unkeyed_position(
    store_url: str, rated: Rated
) -> None:
    fill(store_url, rated, None, stop=400)
    with closing(open_store(store_url, chain_key=None)) as store:
        legacy = store.position()
    fill(store_url, rated, KEY, start=400, stop=800)
    with closing(open_store(store_url, chain_key=KEY)) as store:
        assert {p.kind for p in store.verify()} == {"unkeyed"}
        assert store.verify(unkeyed_until=legacy) == []
        # A legacy event edited and its stream re-chained without the key: the keyed links
        # after it no longer follow, and the re-chained ones are unkeyed past the boundary.
        stream = longest(store)
        old = next(i for i, e in enumerate(stream) if e.position <= legacy)
        assert stream[-1].hash.startswith(KEYED)
        rechain(store_url, stream, old, None)
        problems = store.verify(unkeyed_until=legacy)
    assert problems
    assert {p.wallet_id for p in problems} == {stream[0].wallet_id}


def test_the_cli_reads_the_key_from_a_file(
    store_url: str,
    rated: Rated,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "chain-key").write_bytes(KEY + b"\n")
    monkeypatch.setenv("RATING_CHAIN_KEY_FILE", str(tmp_path / "chain-key"))
    fill(store_url, rated, chain_key(), stop=60)
    assert main(["store", "verify", "--store", store_url]) == 0
    assert "intact" in capsys.readouterr().out
    with closing(open_store(store_url)) as store:
        rechain(store_url, longest(store), 2, None)
    assert main(["store", "verify", "--store", store_url, "--json"]) == 1
    assert '"kind":"downgraded"' in capsys.readouterr().out
    (tmp_path / "chain-key").write_text("short")
    assert main(["store", "verify", "--store", store_url]) == 1
    err = capsys.readouterr().err
    assert "at least 32" in err and "short" not in err.replace("shorter", "")


def test_a_short_or_doubly_set_key_is_refused(tmp_path: Path) -> None:
    assert chain_key({}) is None
    assert chain_key({"RATING_CHAIN_KEY": KEY.decode()}) == KEY
    with pytest.raises(StoreError, match="at least 32"):
        chain_key({"RATING_CHAIN_KEY": "too-short"})
    (tmp_path / "k").write_bytes(KEY)
    with pytest.raises(StoreError, match="not both"):
        chain_key({"RATING_CHAIN_KEY": KEY.decode(), "RATING_CHAIN_KEY_FILE": str(tmp_path)})


@settings(max_examples=60)
@given(
    prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    payload=st.binary(max_size=64),
    flip=st.integers(min_value=0, max_value=63),
)
def test_a_keyed_link_depends_on_every_payload_byte_and_the_key(
    prev: str, payload: bytes, flip: int
) -> None:
    keyed = link(prev, "e1", 3, payload, KEY)
    assert keyed.startswith(KEYED) and keyed != link(prev, "e1", 3, payload, OTHER_KEY)
    assert keyed[len(KEYED) :] != link(prev, "e1", 3, payload)
    if payload:
        i = flip % len(payload)
        changed = payload[:i] + bytes([payload[i] ^ 1]) + payload[i + 1 :]
        assert link(prev, "e1", 3, changed, KEY) != keyed


def test_an_anchor_kept_outside_finds_the_newest_events_deleted(
    store_url: str,
    rated: Rated,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RATING_CHAIN_KEY", KEY.decode())
    fill(store_url, rated, KEY, stop=300)
    anchor_file = tmp_path / "anchor.json"
    assert main(["store", "anchor", "--store", store_url, "--out", str(anchor_file)]) == 0
    fill(store_url, rated, KEY, start=300, stop=400)  # later events are the anchor's no concern
    assert main(["store", "verify", "--store", store_url, "--anchor", str(anchor_file)]) == 0
    capsys.readouterr()

    # Someone with write access drops the newest events of a stream and moves its head back
    # to an older, genuine link: every remaining hash verifies, with the key too.
    with closing(open_store(store_url, chain_key=KEY)) as store:
        stream = longest(store)
        anchored = msgspec.json.decode(anchor_file.read_bytes())["heads"][stream[0].wallet_id]
        keep = stream[: anchored[0] - 3]
        tamper(
            store_url,
            [("DELETE FROM events WHERE position = ?", (e.position,)) for e in stream[len(keep) :]]
            + [
                (
                    "UPDATE streams SET version = ?, hash = ? WHERE wallet_id = ?",
                    (keep[-1].version, keep[-1].hash, stream[0].wallet_id),
                )
            ],
        )
        assert store.verify() == []
    assert main(["store", "verify", "--store", store_url, "--anchor", str(anchor_file)]) == 1
    out = capsys.readouterr().out
    assert "truncated" in out and stream[0].wallet_id in out

    # A forged anchor (a head moved back to match) is refused: its MAC needs the key.
    forged = msgspec.json.decode(anchor_file.read_bytes())
    forged["heads"][stream[0].wallet_id] = [keep[-1].version, keep[-1].hash]
    anchor_file.write_bytes(msgspec.json.encode(forged))
    assert main(["store", "verify", "--store", store_url, "--anchor", str(anchor_file)]) == 1
    assert "MAC does not match" in capsys.readouterr().err
    assert main(["store", "verify", "--store", store_url, "--anchor", str(tmp_path / "no")]) == 2
