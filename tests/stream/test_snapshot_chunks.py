"""A wallet's snapshot writes only the id chunks that changed since its previous one in the
epoch (snapshots.wallet_records): its dedup generations only grow at the end, so a later
snapshot costs what the wallet added, not its whole window. The wallet's record names the
snapshot that wrote each chunk, so a chunk lost since, whose earlier version is still on the
topic, is caught as a torn snapshot, never read as the current one; and a record always
comes with its last chunk, so a record lost, whose earlier version and chunks are still
there, is caught too. A recovered owner knows the chunks it read where they are those it
would write of the state read (same size, same order), and keeps them as well; a map's
chunks are always written again."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from immutables import Map

from engine.domain import initial_state
from engine.domain.keylog import KeyLog
from engine.stream.ownership import recovered_from
from engine.stream.processor import PartitionState, rebuild
from engine.stream.snapshots import manifest_record, read_snapshot, restore, wallet_records
from engine.stream.snapshotter import Snapshotter

from .test_snapshot_verification import (
    Log,
    _chunked,
    _decided,
    _owner_after_recovery,
    _readers,
    _recover_from,
    _snapshots_while_deciding,
    _Writer,
)


def _ids(records: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [key for key, _ in records if key.startswith(b"ids/")]


def test_a_wallet_that_gained_a_few_ids_writes_only_its_last_chunk() -> None:
    seen = KeyLog.of((f"cdr:k{i}", i) for i in range(10))
    state = msgspec.structs.replace(initial_state("w"), seen=seen)
    with _chunked(4):
        first, layout = wallet_records(0, "e", 41, state)
        assert _ids(first) == [b"ids/w/0", b"ids/w/1", b"ids/w/2"]
        grown = msgspec.structs.replace(state, seen=state.seen.set("cdr:k10", 10))
        second, layout = wallet_records(0, "e", 42, grown, layout)
        assert _ids(second) == [b"ids/w/2"]  # [8, 11): the chunk the new key went into
        unchanged, _ = wallet_records(0, "e", 43, grown, layout)
    assert _ids(unchanged) == [b"ids/w/2"]  # a record always comes with its last chunk
    # The latest of each key, as compaction leaves them, with a manifest of offset 43.
    manifest = (b"partition-0", _manifest(43))
    found, torn = restore(first + second + unchanged + [manifest], 0)
    assert found is not None and not torn
    assert found.wallets["w"].seen == grown.seen


def _manifest(offset: int) -> bytes:
    part = PartitionState(wallets={"w": initial_state("w")}, events_offset=offset)
    return manifest_record(0, "e", part)[1]


def test_later_snapshots_write_fewer_chunks_and_recovery_stays_exact() -> None:
    live, written = _decided()
    with _chunked(3):
        writer = _snapshots_while_deciding(written, [600, 610])
    first, last = writer.transactions
    assert 0 < len(_ids(last)) < len(_ids(first)) / 10
    found, torn = _recover_from([r for t in writer.transactions for r in t], written)
    assert not torn and found.source == "snapshot"
    assert found.state.wallets == live.partitions[0].wallets
    assert found.decisions == len(written) - 610


def test_a_lost_chunk_whose_earlier_version_remains_is_caught() -> None:
    live, written = _decided()
    with _chunked(3):
        writer = _snapshots_while_deciding(written, [600, 610])
    first, last = writer.transactions
    rewritten = [k for k in _ids(last) if k in set(_ids(first))]
    assert rewritten  # a growing chunk: written in both snapshots
    records = [r for t in writer.transactions for r in t if r[0] != rewritten[0] or t is first]
    assert restore(records, 0) == (None, True)
    found, _ = _recover_from(records, written)
    assert found.source == "mismatch"  # replayed from the log instead
    assert found.state.wallets == live.partitions[0].wallets


def test_a_wallet_record_written_before_chunks_were_kept_is_still_read() -> None:
    live, written = _decided()
    with _chunked(50):
        writer = _snapshots_while_deciding(written, [300])
    (only,) = writer.transactions
    former = []
    for key, value in only:  # each wallet record without its last field, chunks_at
        if key.startswith(b"wallet/"):
            fields = msgspec.msgpack.decode(value)
            assert fields[0] == "w" and len(fields[-1]) == fields[-2]
            value = msgspec.msgpack.encode(fields[:-1])
        former.append((key, value))
    found, torn = _recover_from(former, written)
    assert not torn and found.source == "snapshot"
    assert found.state.wallets == live.partitions[0].wallets


def test_a_lost_wallet_record_whose_earlier_chunks_all_remain_is_caught() -> None:
    """globex's chunks of the first snapshot are all still its latest ones but the last
    (its ids grew by whole chunks): without the last chunk written with each record, the
    first snapshot's record would read as whole, and recovery would miss globex's charges
    between the two snapshots."""
    live, written = _decided()
    with _chunked(3):
        writer = _snapshots_while_deciding(written, [782, 811])
    records = [
        r
        for t in writer.transactions
        for r in t
        if r[0] != b"wallet/globex" or t is not writer.transactions[-1]
    ]
    assert restore(records, 0) == (None, True)
    found, _ = _recover_from(records, written)
    assert found.state.wallets == live.partitions[0].wallets


def test_a_wallet_without_ids_writes_an_empty_chunk_so_its_lost_record_is_caught() -> None:
    state = initial_state("w")
    first, layout = wallet_records(0, "e", 41, state)
    assert _ids(first) == [b"ids/w/0"]
    changed = msgspec.structs.replace(state, credit=5)
    second, _ = wallet_records(0, "e", 42, changed, layout)
    manifest = (b"partition-0", _manifest(42))
    found, torn = restore(first + second + [manifest], 0)
    assert found is not None and not torn and found.wallets["w"].credit == 5
    lost = [r for r in second if r[0] != b"wallet/w"]
    assert restore(first + lost + [manifest], 0) == (None, True)


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 999), min_size=2, max_size=5, unique=True),
    chunk=st.sampled_from([1, 2, 3, 50]),
    lost=st.lists(st.integers(0, 100_000), min_size=1, max_size=2),
)
def test_any_record_of_any_snapshot_lost_and_recovery_stays_exact(
    cuts: list[int], chunk: int, lost: list[int]
) -> None:
    """Snapshots written over time with chunks kept from one to the next; one or two of all
    their records lost (a wallet record, a chunk, a manifest, of any snapshot): recovery
    takes a whole snapshot or replays the log, and is exact either way."""
    live, written = _decided()
    with _chunked(chunk):
        writer = _snapshots_while_deciding(written, cuts)
    records = [r for t in writer.transactions for r in t]
    gone = {i % len(records) for i in lost}
    kept = [r for i, r in enumerate(records) if i not in gone]
    found, _ = _recover_from(kept, written)
    assert found.state.wallets == live.partitions[0].wallets
    assert found.state.decided == live.partitions[0].decided


def _chunk_keys(records: list[tuple[bytes, bytes]], wallets: set[str]) -> list[bytes]:
    return [k for k in _ids(records) if k.split(b"/")[1].decode() in wallets]


def _later_owner(
    records: list[tuple[bytes, bytes]], read_at: int, upto: int, written: Log
) -> tuple[Snapshotter, list[tuple[bytes, bytes]]]:
    """An owner that recovered from ``records`` and the log up to ``read_at``, then decided
    up to ``upto`` and wrote one snapshot: what that snapshot wrote."""
    processor, snapshotter, source = _owner_after_recovery(records, read_at, written)
    assert source == "snapshot"
    processor.partitions[0], _ = rebuild(written[read_at:upto], processor.partitions[0])
    writer = _Writer()
    writer.transactions.append([])
    snapshotter.write(0, writer)  # type: ignore[arg-type]
    return snapshotter, writer.transactions[0]


def test_a_recovered_owner_writes_only_the_chunks_that_changed_since_the_snapshot_it_read() -> None:
    live, written = _decided()
    with _chunked(3):
        old = _snapshots_while_deciding(written, [600])
        records = old.transactions[0]
        snapshotter, first = _later_owner(records, 600, 610, written)
    wallets = {k[7:].decode() for k, _ in first if k.startswith(b"wallet/")}
    assert wallets and snapshotter.epochs[0].layouts.keys() >= wallets
    # Each changed wallet's chunks that its new ids did not reach are kept: at most the
    # chunks of its 10 new ids (3 a chunk) and its last one are written, of its hundreds.
    assert len(_chunk_keys(first, wallets)) <= len(wallets) + 4 * len(wallets)
    assert len(_chunk_keys(first, wallets)) < len(_chunk_keys(records, wallets)) / 10
    found, torn = _recover_from(records + first, written)
    assert not torn and found.source == "snapshot"
    assert found.state.wallets == live.partitions[0].wallets
    assert found.decisions == len(written) - 610


def test_chunks_written_with_another_chunk_size_are_all_written_again() -> None:
    live, written = _decided()
    with _chunked(3):
        records = _snapshots_while_deciding(written, [600]).transactions[0]
    with _chunked(3):
        read = recovered_from(records, 0, *_readers(written[:600])).written
        assert read is not None and len(read.layouts) == len(read.wallets)
    with _chunked(5):  # a new owner of another version
        read = recovered_from(records, 0, *_readers(written[:600])).written
        assert read is not None and read.wallets and read.layouts == {}
        snapshotter, first = _later_owner(records, 600, 610, written)
        wallets = {k[7:].decode() for k, _ in first if k.startswith(b"wallet/")}
        states = snapshotter.processor.partitions[0].wallets
        every = sum(len(wallet_records(0, "e", 0, states[w])[1]) for w in wallets)
    assert len(_chunk_keys(first, wallets)) == every
    found, torn = _recover_from(records + first, written)
    assert not torn and found.source == "snapshot"
    assert found.state.wallets == live.partitions[0].wallets


def test_a_restored_map_of_commands_has_all_its_chunks_written_again() -> None:
    """A map built again iterates in the order of this process's string hashes, not the
    writer's: its chunks as read are never kept, so no id is lost or written twice."""
    commands = Map({f"cmd:{i}": i for i in range(5)})
    seen = KeyLog.of((f"cdr:k{i}", i) for i in range(3))
    state = msgspec.structs.replace(initial_state("w"), seen=seen, commands=commands)
    with _chunked(2):
        records, _ = wallet_records(0, "e", 41, state)
        snapshot = read_snapshot([*records, (b"partition-0", _manifest(41))], 0)
        restored = snapshot.state.wallets["w"]  # type: ignore[union-attr]
        grown = msgspec.structs.replace(restored, seen=restored.seen.set("cdr:k3", 3))
        again, _ = wallet_records(0, "e", 42, grown, snapshot.layouts["w"])
    # seen's full chunk is kept; its second (k2, k3) and all three of the map's written.
    assert _ids(again) == [b"ids/w/1", b"ids/w/2", b"ids/w/3", b"ids/w/4"]
    found, _ = restore(records + again + [(b"partition-0", _manifest(42))], 0)
    assert found is not None and found.wallets["w"].commands == commands
    assert found.wallets["w"].seen == grown.seen


def test_chunks_of_another_size_are_not_taken_for_the_readers_even_when_as_many() -> None:
    """Five ids in chunks of 3 are two chunks, and so they are in chunks of 4: had their
    layout been read as the reader's, its next snapshot would keep the first chunk (3 ids)
    as the span of 4, and k3 would be lost from the dedup window."""
    seen = KeyLog.of((f"cdr:k{i}", i) for i in range(5))
    state = msgspec.structs.replace(initial_state("w"), seen=seen)
    with _chunked(3):
        records, _ = wallet_records(0, "e", 41, state)
    with _chunked(4):
        snapshot = read_snapshot([*records, (b"partition-0", _manifest(41))], 0)
        assert snapshot.state is not None and snapshot.layouts == {}
        restored = snapshot.state.wallets["w"]
        grown = msgspec.structs.replace(restored, seen=restored.seen.set("cdr:k5", 5))
        again, _ = wallet_records(0, "e", 42, grown, snapshot.layouts.get("w", ()))
    found, _ = restore(records + again + [(b"partition-0", _manifest(42))], 0)
    assert found is not None and found.wallets["w"].seen == grown.seen
