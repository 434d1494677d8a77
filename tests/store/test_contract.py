"""The EventStore contract, written once and run against SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from datetime import UTC, datetime

import pytest

from engine.codec import decode_event, encode
from engine.domain import AdjustRating, TopUp
from engine.domain.events import RatingAdjusted, SimsBarred
from engine.offline.replay_shard import ADJUSTED
from engine.store import EventStore, StoredEvent, StoredRevision, StoreError, open_store
from engine.store.base import inputs_query, payloads_query
from engine.store.chain import GENESIS, link

from .helpers import Rated, query_plan, raw_execute, tamper


def _all(store: EventStore, after: int = 0, batch: int = 10_000) -> list[StoredEvent]:
    return [e for chunk in store.read_all(after, batch) for e in chunk]


def test_an_empty_store(store: EventStore) -> None:
    assert store.position() == 0
    assert _all(store) == []
    assert store.wallets() == []
    assert list(store.read_inputs()) == []
    assert store.input_counts() == {}
    assert store.verify() == []
    assert store.append([]) == 0


def test_appended_events_read_back_as_written(store: EventStore, rated: Rated) -> None:
    assert store.append(rated.events, rated.inputs) == len(rated.events)
    stored = _all(store)
    assert [s.position for s in stored] == list(range(1, len(rated.events) + 1))
    assert [s.event_id for s in stored] == [e.id for e in rated.events]
    assert [decode_event(s.payload) for s in stored] == rated.events
    assert [s.payload for s in stored] == [encode(e) for e in rated.events]
    for s, e in zip(stored, rated.events, strict=True):
        assert (s.wallet_id, s.type, s.at) == (e.wallet_id, type(e).__name__, e.at)
    assert store.position() == len(rated.events)
    assert store.wallets() == sorted({e.wallet_id for e in rated.events})
    assert store.verify() == []


def test_read_stream_has_versions_one_to_n_chained(store: EventStore, rated: Rated) -> None:
    store.append(rated.events)
    for wallet in store.wallets():
        stream = store.read_stream(wallet)
        expected = [e.id for e in rated.events if e.wallet_id == wallet]
        assert [s.event_id for s in stream] == expected
        assert [s.version for s in stream] == list(range(1, len(expected) + 1))
        prev = GENESIS
        for s in stream:
            assert s.hash == link(prev, s.event_id, s.version, s.payload)
            prev = s.hash
    assert store.read_stream("no-such-wallet") == []


def test_read_stream_of_some_types_and_every_event_after_a_position(
    store: EventStore, rated: Rated
) -> None:
    """What a replay reads of a wallet: the events of the types it compares after one
    position, and every event after another, in version order."""
    store.append(rated.events)
    checked = 0
    for wallet in store.wallets():
        stream = store.read_stream(wallet)
        types = {stream[0].type, stream[-1].type}
        for after in (0, stream[len(stream) // 3].position):
            for whole_after in (None, after, stream[len(stream) // 2].position, 10**9):
                found = store.read_stream(wallet, after, types, whole_after)
                every = 10**9 if whole_after is None else whole_after
                assert found == [
                    s
                    for s in stream
                    if s.position > after and (s.type in types or s.position > every)
                ]
                checked += len(found) < len(stream)
        assert store.read_stream(wallet, 0, set()) == []
        assert store.read_stream(wallet, 0, set(), stream[-2].position) == stream[-1:]
    assert checked  # some reads left events out


def test_a_retried_batch_adds_nothing(store: EventStore, rated: Rated) -> None:
    batch = rated.events[:500]
    assert store.append(batch, rated.inputs[:20]) == 500
    before = (_all(store), list(store.read_inputs()), store.stats())
    assert store.append(batch, rated.inputs[:20]) == 0
    assert (_all(store), list(store.read_inputs()), store.stats()) == before


def test_a_partly_stored_batch_adds_only_the_rest(store: EventStore, rated: Rated) -> None:
    events = rated.events[:800]
    assert store.append(events[200:300]) == 100
    assert store.append(events) == 700
    stored = _all(store)
    assert [s.event_id for s in stored] == [
        e.id for e in events[200:300] + events[:200] + events[300:]
    ]
    assert store.verify() == []


def test_duplicates_inside_one_batch_are_stored_once(store: EventStore, rated: Rated) -> None:
    events = rated.events[:50]
    assert store.append(events + events[::-1] + events) == 50
    assert [s.event_id for s in _all(store)] == [e.id for e in events]


def test_read_all_in_batches_from_a_position(store: EventStore, rated: Rated) -> None:
    store.append(rated.events[:1000])
    chunks = list(store.read_all(after=123, batch=100))
    assert all(1 <= len(c) <= 100 for c in chunks)
    positions = [s.position for c in chunks for s in c]
    assert positions == list(range(124, 1001))
    assert list(store.read_all(after=1000)) == []


def test_read_payloads_gives_the_stored_json_in_batches(store: EventStore, rated: Rated) -> None:
    store.append(rated.events[:1000])
    chunks = list(store.read_payloads(after=123, batch=100))
    assert all(1 <= len(c) <= 100 for c in chunks)
    expected = [(s.position, s.payload) for s in _all(store, 123)]
    assert [p for c in chunks for p in c] == expected
    assert [type(payload) for c in chunks for _, payload in c] == [bytes] * len(expected)
    assert list(store.read_payloads(after=1000)) == []


def test_read_payloads_of_some_types_skips_the_others(store: EventStore, rated: Rated) -> None:
    """What a replay reads of the whole log: only the types it names, in position order,
    in batches, from a position on."""
    store.append(rated.events)
    kinds = {"Charged", "WalletOpened"}
    expected = [(s.position, s.payload) for s in _all(store, 50) if s.type in kinds]
    assert 0 < len(expected) < len(rated.events) - 50
    chunks = list(store.read_payloads(after=50, batch=7, types=kinds))
    assert all(1 <= len(c) <= 7 for c in chunks)
    assert [p for c in chunks for p in c] == expected
    assert list(store.read_payloads(types=set())) == []
    assert list(store.read_payloads(types={"NoSuchType"})) == []


def _adjustments(rated: Rated, count: int) -> list[RatingAdjusted]:
    first = rated.events[0]
    return [
        RatingAdjusted(
            f"cmd:adj:test-{i}#1",
            first.wallet_id,
            rated.events[-1].at,
            f"cdr-{i}",
            "89000000000000000001",
            "data",
            "EU",
            "test",
            i,
            0,
            1,
            (),
        )
        for i in range(count)
    ]


def test_the_adjustments_are_read_through_their_own_index(
    store_url: str, store: EventStore, rated: Rated
) -> None:
    """What a replay reads of the whole log, the adjustments (``replay_shard.ADJUSTED``),
    comes through the partial index ``events_adjustments``: every one, in position order,
    after any position, and the database's plan reads that index, not the log."""
    half = len(rated.events) // 2
    adjustments = _adjustments(rated, 30)
    for events in (rated.events[:half], adjustments[:15], rated.events[half:], adjustments[15:]):
        store.append(events)
    stored = [s for s in _all(store) if s.type == "RatingAdjusted"]
    assert [decode_event(s.payload) for s in stored] == adjustments
    for after in (0, stored[10].position, stored[20].position, stored[-1].position):
        chunks = list(store.read_payloads(after, batch=4, types=ADJUSTED))
        assert all(1 <= len(c) <= 4 for c in chunks)
        expected = [(s.position, s.payload) for s in stored if s.position > after]
        assert [p for c in chunks for p in c] == expected
    sql, args = payloads_query("payload", 0, 100, ADJUSTED, "?")
    assert "events_adjustments" in query_plan(store_url, sql, args)
    # a type without an index of its own is read from the log itself
    sql, args = payloads_query("payload", 0, 100, {"Charged"}, "?")
    assert "events_adjustments" not in query_plan(store_url, sql, args)


def test_inputs_are_stored_once_in_first_stored_order(store: EventStore, rated: Rated) -> None:
    half = len(rated.decisions) // 2
    for events, inputs in rated.decisions[:half]:
        store.append(events, inputs)
    for events, inputs in rated.decisions:  # a replay from the start: the first half again
        store.append(events, inputs)
    stored = list(store.read_inputs())
    assert [(i.wallet_id, i.key) for i in stored] == [(w, item.key) for w, item in rated.inputs]
    assert [i.item for i in stored] == [item for _, item in rated.inputs]
    wallet = rated.inputs[0][0]
    mine = list(store.read_inputs(wallet))
    assert [i.key for i in mine] == [item.key for w, item in rated.inputs if w == wallet]
    assert store.stats().inputs == len(rated.inputs)
    # what a replay weighs its wallets by: each wallet's inputs, stored once
    per_wallet: dict[str, int] = defaultdict(int)
    for w, _ in rated.inputs:
        per_wallet[w] += 1
    assert store.input_counts() == per_wallet


def test_a_replays_corrections_are_left_out_unread_when_asked(
    store_url: str, store: EventStore, rated: Rated
) -> None:
    """What re-rating reads of a wallet: its inputs without a replay's corrections
    (``AdjustRating``), counted the same way. A command whose id only looks like a
    correction's is still read: the store tells them apart by what the command is."""
    half = len(rated.decisions) // 2
    for events, inputs in rated.decisions[:half]:
        store.append(events, inputs)
    _, cut = store.marks()
    wallet = rated.inputs[0][0]
    at = rated.events[-1].at
    corrections = [
        AdjustRating(
            f"adj:cdr:x-{i}:1", wallet, at, f"x-{i}", "8900", "data", "EU", "r", 5, 0, 1, ()
        )
        for i in range(7)
    ]
    lookalike = TopUp("adj:cdr:x-0:2", wallet, at, "1.00", "EUR")
    store.append([], [(wallet, c) for c in [*corrections[:3], lookalike, *corrections[3:]]])
    for events, inputs in rated.decisions[half:]:
        store.append(events, inputs)
    every = list(store.read_inputs())
    kept = [i for i in every if not isinstance(i.item, AdjustRating)]
    assert len(every) - len(kept) == len(corrections)
    assert lookalike in [i.item for i in kept]
    assert list(store.read_inputs(corrections=False)) == kept
    for after in (0, cut):
        mine = list(store.read_inputs(wallet, after, corrections=False))
        with_them = list(store.read_inputs(wallet, after))
        assert mine == [i for i in with_them if not isinstance(i.item, AdjustRating)]
        assert len(with_them) - len(mine) == len(corrections)
        assert lookalike in [i.item for i in mine]
        assert store.input_counts({wallet: after}, corrections=False) == {wallet: len(mine)}
        assert store.input_counts({wallet: after}) == {wallet: len(with_them)}
    counted: dict[str, int] = defaultdict(int)
    for i in kept:
        counted[i.wallet_id] += 1
    assert store.input_counts(corrections=False) == counted
    assert sum(store.input_counts().values()) == len(every)
    # a wallet's inputs come in stored order from their own index, not sorted per batch
    sql, args = inputs_query(wallet, cut, False, "?")
    assert "inputs_by_wallet" in query_plan(store_url, sql, args)


def test_input_counts_after_a_cut_count_only_the_inputs_stored_after_it(
    store: EventStore, rated: Rated
) -> None:
    """What a replay from snapshots re-decides of each wallet: its inputs after its cut."""
    half = len(rated.decisions) // 2
    for events, inputs in rated.decisions[:half]:
        store.append(events, inputs)
    _, cut = store.marks()
    first = {(w, item.key) for _, inputs in rated.decisions[:half] for w, item in inputs}
    for events, inputs in rated.decisions[half:]:
        store.append(events, inputs)
    later = dict.fromkeys(
        (w, item.key) for _, inputs in rated.decisions[half:] for w, item in inputs
    )
    after: dict[str, int] = defaultdict(int)
    for w, key in later:
        if (w, key) not in first:
            after[w] += 1
    every = store.input_counts()
    wallets = sorted(every)
    assert len(wallets) > 1
    # only the wallets named, each from its own cut
    counts = store.input_counts({wallets[0]: cut, "no-such-wallet": 0})
    assert counts == {wallets[0]: after[wallets[0]]}
    assert 0 < counts[wallets[0]] < every[wallets[0]]
    assert store.input_counts({wallets[1]: 0}) == {wallets[1]: every[wallets[1]]}
    assert store.input_counts(dict.fromkeys(wallets, 0)) == every
    assert store.input_counts(dict.fromkeys(wallets, cut)) == {w: n for w, n in after.items() if n}
    assert store.input_counts(dict.fromkeys(wallets, 10**9)) == {}
    assert store.input_counts({}) == {}


def test_stats_count_what_is_stored(store: EventStore, rated: Rated) -> None:
    store.append(rated.events[:300], rated.inputs[:10])
    stats = store.stats()
    wallets = {e.wallet_id for e in rated.events[:300]}
    assert (stats.events, stats.streams, stats.inputs, stats.position) == (
        300,
        len(wallets),
        10,
        300,
    )


def test_a_reopened_store_continues_the_log(store_url: str, rated: Rated) -> None:
    with closing(open_store(store_url)) as first:
        first.append(rated.events[:100])
    with closing(open_store(store_url)) as again:
        assert again.append(rated.events[:150]) == 50
        assert again.position() == 150
        assert again.verify() == []


def _revision(number: int, digest: str = "ab" * 32, name: str = "catalog.yaml") -> StoredRevision:
    source = f"# revision {number}\nproviders: []\n"
    return StoredRevision(number, digest, name, source, "2026-11-30T12:00:00Z")


def test_catalog_revisions_are_kept_once_each(store_url: str) -> None:
    with closing(open_store(store_url)) as store:
        assert store.revisions() == []
        assert store.put_revision(_revision(2)) is True
        assert store.put_revision(_revision(1, "cd" * 32, "first.yaml")) is True
        assert store.put_revision(_revision(2)) is False  # the sink reading it again
        assert [r.revision for r in store.revisions()] == [1, 2]
    with closing(open_store(store_url)) as again:
        assert again.revisions() == [_revision(1, "cd" * 32, "first.yaml"), _revision(2)]


def test_a_revision_number_never_names_two_catalogs(store: EventStore) -> None:
    store.put_revision(_revision(1))
    with pytest.raises(StoreError, match=r"catalog revision 1 is stored as catalog\.yaml"):
        store.put_revision(_revision(1, "ef" * 32, "other.yaml"))
    assert store.revisions() == [_revision(1)]


@pytest.mark.parametrize("statement", ["UPDATE events SET type = 'x'", "DELETE FROM events"])
def test_stored_events_cannot_be_changed(
    store: EventStore, store_url: str, rated: Rated, statement: str
) -> None:
    store.append(rated.events[:10])
    with pytest.raises(Exception, match="append-only"):
        raw_execute(store_url, statement)
    assert len(_all(store)) == 10


def _stream_of(store: EventStore, rated: Rated) -> list[StoredEvent]:
    store.append(rated.events[:2000])
    return max((store.read_stream(w) for w in store.wallets()), key=len)


def test_verify_finds_a_payload_altered_by_hand(
    store: EventStore, store_url: str, rated: Rated
) -> None:
    target = _stream_of(store, rated)[5]
    forged = target.payload.replace(b'"wallet_id"', b'"wallet_id" ', 1)
    tamper(
        store_url, [("UPDATE events SET payload = ? WHERE position = ?", (forged, target.position))]
    )
    problems = store.verify()
    assert [(p.wallet_id, p.version, p.event_id, p.kind) for p in problems] == [
        (target.wallet_id, target.version, target.event_id, "altered")
    ]


def test_verify_finds_an_altered_event_whose_hash_was_recomputed(
    store: EventStore, store_url: str, rated: Rated
) -> None:
    stream = _stream_of(store, rated)
    target = stream[5]
    forged = target.payload.replace(b'"wallet_id"', b'"wallet_id" ', 1)
    digest = link(target_prev := stream[4].hash, target.event_id, target.version, forged)
    assert target_prev
    tamper(
        store_url,
        [
            (
                "UPDATE events SET payload = ?, hash = ? WHERE position = ?",
                (forged, digest, target.position),
            )
        ],
    )
    problems = store.verify()
    assert [(p.version, p.kind) for p in problems] == [(target.version + 1, "reordered")]


def test_verify_finds_a_deleted_event(store: EventStore, store_url: str, rated: Rated) -> None:
    stream = _stream_of(store, rated)
    tamper(store_url, [("DELETE FROM events WHERE position = ?", (stream[3].position,))])
    problems = store.verify()
    assert [(p.wallet_id, p.version, p.kind) for p in problems] == [
        (stream[3].wallet_id, 4, "missing")
    ]


def test_verify_finds_the_newest_event_deleted(
    store: EventStore, store_url: str, rated: Rated
) -> None:
    stream = _stream_of(store, rated)
    tamper(store_url, [("DELETE FROM events WHERE position = ?", (stream[-1].position,))])
    problems = store.verify()
    assert [(p.version, p.kind) for p in problems] == [(len(stream), "missing")]


def test_verify_finds_two_events_swapped(store: EventStore, store_url: str, rated: Rated) -> None:
    stream = _stream_of(store, rated)
    a, b = stream[6].position, stream[7].position
    swap = "UPDATE events SET position = ? WHERE position = ?"
    tamper(store_url, [(swap, (-1, a)), (swap, (a, b)), (swap, (b, -1))])
    problems = store.verify()
    assert [(p.version, p.event_id, p.kind) for p in problems] == [
        (stream[7].version, stream[7].event_id, "reordered")
    ]
    assert [s.event_id for s in _all(store) if s.position in (a, b)] == [
        stream[7].event_id,
        stream[6].event_id,
    ]


def test_every_stream_is_checked(store: EventStore, store_url: str, rated: Rated) -> None:
    store.append(rated.events[:3000])
    streams: dict[str, list[StoredEvent]] = defaultdict(list)
    for s in _all(store):
        streams[s.wallet_id].append(s)
    hits = [s[1] for s in streams.values() if len(s) > 1]
    tamper(
        store_url,
        [
            ("UPDATE events SET payload = ? WHERE position = ?", (h.payload + b" ", h.position))
            for h in hits
        ],
    )
    assert sorted((p.wallet_id, p.kind) for p in store.verify()) == sorted(
        (h.wallet_id, "altered") for h in hits
    )


def test_an_event_stored_under_a_former_name_reads_under_its_current_one(
    store: EventStore, store_url: str
) -> None:
    """As a store written before ``BarSims`` was renamed holds it: the row keeps its bytes
    (so its chain verifies) and reads as ``SimsBarred``."""
    barred = SimsBarred("cmd:t#0", "w-old", datetime(2026, 11, 1, tzinfo=UTC), ("8944",))
    store.append([barred])
    (row,) = store.read_stream("w-old")
    old = row.payload.replace(b'"SimsBarred"', b'"BarSims"')
    digest = link(GENESIS, row.event_id, row.version, old)
    tamper(
        store_url,
        [
            (
                "UPDATE events SET type = ?, payload = ?, hash = ? WHERE position = ?",
                ("BarSims", old, digest, row.position),
            ),
            ("UPDATE streams SET hash = ? WHERE wallet_id = ?", (digest, "w-old")),
        ],
    )
    (row,) = store.read_stream("w-old")
    assert (row.type, row.payload) == ("SimsBarred", old)
    assert store.read_stream("w-old", 0, {"SimsBarred"}, 10**9) == [row]
    assert list(store.read_payloads(types={"SimsBarred"})) == [[(row.position, old)]]
    assert [s.type for s in _all(store)] == ["SimsBarred"]
    assert decode_event(row.payload) == barred
    assert store.verify() == []
