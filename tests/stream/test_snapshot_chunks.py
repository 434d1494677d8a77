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

import collections
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from immutables import Map

from engine.catalog import load_catalog
from engine.domain import WalletState, initial_state
from engine.domain.catalog import Subscription
from engine.domain.keylog import KeyLog
from engine.states import encode_state, without_ids
from engine.stream import chunks
from engine.stream.metrics import Metrics
from engine.stream.ownership import recovered_from
from engine.stream.processor import PartitionState, RatingProcessor, rebuild
from engine.stream.settings import WorkerSettings
from engine.stream.snapshots import manifest_record, read_snapshot, restore, wallet_records
from engine.stream.snapshotter import Snapshotter

from .harness import CATALOG
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
    """The keys of the ids chunks (not the maps' chunks, tagged ``c``)."""
    return [k for k, v in records if k.startswith(b"ids/") and msgspec.msgpack.decode(v)[0] == "i"]


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


def _former(records: list[tuple[bytes, bytes]], fields_kept: int) -> list[tuple[bytes, bytes]]:
    """``records`` as an earlier version wrote them: chunks numbered 0, 1, 2... in each
    wallet's order, and its records with their first ``fields_kept`` fields."""
    renumbered: dict[bytes, int] = {}
    wallets = []
    for key, value in records:
        if key.startswith(b"wallet/"):
            fields = msgspec.msgpack.decode(value)
            # This version's tag, which an earlier one does not decode; then the earlier's.
            assert fields[0] == "n" and len(fields[-1]) == len(fields[-2]) == fields[-3]
            w = key[7:].decode()
            renumbered |= {f"ids/{w}/{n}".encode(): p for p, n in enumerate(fields[-1])}
            wallets.append((key, msgspec.msgpack.encode(["w", *fields[1:fields_kept]])))
    out = []
    for key, value in records:
        if key in renumbered:
            fields = msgspec.msgpack.decode(value)
            fields[5] = renumbered[key]
            out.append((f"ids/{fields[4]}/{fields[5]}".encode(), msgspec.msgpack.encode(fields)))
    return out + wallets + [r for r in records if r[0].startswith(b"partition-")]


@pytest.mark.parametrize("fields_kept", [6, 7], ids=["before chunks were kept", "before numbers"])
def test_a_snapshot_an_earlier_version_wrote_is_still_read(fields_kept: int) -> None:
    """Written before chunks were kept (every chunk its record's own), or before they were
    numbered by field (numbered in order): read; its chunks' layout is known only where
    their numbers in order are the ones this version gives them (a wallet with chunks of
    ``seen`` alone), and the next owner's snapshot on top of it recovers exactly."""
    live, written = _decided()
    with _chunked(50, entries=100_000):  # an earlier version kept every map in the record
        (only,) = _snapshots_while_deciding(written, [300]).transactions
        former = _former(only, fields_kept)
        found, torn = _recover_from(former, written)
        assert not torn and found.source == "snapshot"
        assert found.state.wallets == live.partitions[0].wallets
        read = recovered_from(former, 0, *_readers(written[:300])).written
        assert read is not None and read.wallets
        fields = {span[0] for layout in read.layouts.values() for span, _ in layout}
        assert fields == ({0} if fields_kept == 7 else set())  # seen's chunks only
        _, first = _later_owner(former, 300, 320, written)
        found, torn = _recover_from(former + first, written)
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
    """The keys of ``wallets``' chunks, of ids and of maps."""
    return [k for k, _ in records if k[:4] == b"ids/" and k.split(b"/")[1].decode() in wallets]


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
    with _chunked(3, entries=10_000):  # the maps in the records (a map's chunks: below)
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
    assert _ids(again) == [b"ids/w/1", b"ids/w/2000000", b"ids/w/2000001", b"ids/w/2000002"]
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


# -- a wallet's large maps (a fleet's SIMs, their tier counters) in chunks of their own --


def _fleet(sims: int) -> WalletState:
    """A wallet of ``sims`` SIMs attached by commands, each with two tier counters."""
    iccids = [f"8944{i:015d}" for i in range(sims)]
    attached = Map({i: Subscription(i, "fleet", "iot-basic", None, 1_780_000_000) for i in iccids})
    counters = {(i, service, "2026-11"): 1_000 for i in iccids for service in ("data", "sms")}
    state = initial_state("fleet")
    return msgspec.structs.replace(state, attached=attached, tier_used=Map(counters))


def _owner_of(state: WalletState) -> tuple[Snapshotter, _Writer]:
    processor = RatingProcessor(load_catalog(CATALOG))
    processor.install(
        0, PartitionState({state.wallet_id: state}, events_offset=0, last_decision="d")
    )
    settings = WorkerSettings(catalog=CATALOG, data_dir=Path())
    return Snapshotter(settings, "wallet.snapshots", processor, Metrics()), _Writer()


def _snapshot(snapshotter: Snapshotter, writer: _Writer) -> list[tuple[bytes, bytes]]:
    snapshotter.processor.partitions[0].events_offset += 1
    writer.transactions.append([])
    snapshotter.write(0, writer)  # type: ignore[arg-type]
    return writer.transactions[-1]


def _maps_written(records: list[tuple[bytes, bytes]]) -> collections.Counter[str]:
    decoded = (msgspec.msgpack.decode(v) for k, v in records if k[:4] == b"ids/")
    return collections.Counter(fields[6] for fields in decoded if fields[0] == "c")


def test_a_fleet_of_twenty_thousand_sims_is_snapshotted_in_records_under_the_limit() -> None:
    """Its SIMs and counters in one record would be about 4 MB, over Kafka's limit: the
    partition's every snapshot would be skipped and each recovery would replay its log."""
    fleet = _fleet(20_000)
    assert len(encode_state(without_ids(fleet))) > 3_000_000
    snapshotter, writer = _owner_of(fleet)
    records = _snapshot(snapshotter, writer)
    assert snapshotter.metrics.snapshots_skipped._value.get() == 0
    assert max(len(v) for _, v in records) < 900_000 / 4
    per = chunks.CHUNK_ENTRIES
    assert _maps_written(records) == {"attached": 20_000 // per + 1, "tier_used": 40_000 // per + 1}
    found, torn = restore(records, 0)
    assert found is not None and not torn
    assert found.wallets["fleet"] == fleet


def test_a_large_map_that_did_not_change_is_not_written_again() -> None:
    fleet = _fleet(5_000)
    snapshotter, writer = _owner_of(fleet)
    first = _snapshot(snapshotter, writer)
    part = snapshotter.processor.partitions[0]
    counted = fleet.tier_used.set(("89440000000000000007", "data", "2026-11"), 2_500)
    seen = fleet.seen  # and its ids grow by a chunk and more: no other field's chunk moves
    for i in range(chunks.CHUNK_IDS + 10):
        seen = seen.set(f"cdr:k{i}", i)
    part.wallets["fleet"] = msgspec.structs.replace(fleet, tier_used=counted, seen=seen)
    second = _snapshot(snapshotter, writer)
    assert _maps_written(first)["attached"] == 5 and "attached" not in _maps_written(second)
    assert _maps_written(second)["tier_used"] == 10  # a map that changed: written whole
    found, torn = restore(first + second, 0)
    assert found is not None and not torn
    assert found.wallets["fleet"] == part.wallets["fleet"]
    # The chunks the second wrote lost, the first's versions still there: caught.
    wallet_and_manifest = second[-2:]
    assert restore(first + wallet_and_manifest, 0) == (None, True)


def test_a_chunk_of_a_map_this_version_does_not_know_makes_the_snapshot_torn() -> None:
    snapshotter, writer = _owner_of(_fleet(2_000))
    records = _snapshot(snapshotter, writer)
    key, value = next((k, v) for k, v in records if _maps_written([(k, v)]))
    fields = msgspec.msgpack.decode(value)
    fields[6] = "sims_of_the_future"
    forged = [(k, msgspec.msgpack.encode(fields) if k == key else v) for k, v in records]
    assert restore(forged, 0) == (None, True)


@settings(max_examples=60)
@given(size=st.integers(1, 40), step=st.integers(1, 7), asked=st.data())
def test_a_maps_chunks_asked_for_in_order_hold_its_entries_whichever_are_passed_over(
    size: int, step: int, asked: st.DataObject
) -> None:
    """One pass over a map serves all its chunks: a chunk not asked for (kept from the
    previous snapshot) is passed over, and those after it still hold their own entries."""
    counters = Map({(f"8944{i:015d}", "data", "2026-11"): i for i in range(size)})
    state = msgspec.structs.replace(initial_state("w"), tier_used=counters)
    field = chunks.FIELDS.index("tier_used")
    cut = [(field, counters, i, min(i + step, size)) for i in range(0, size, step)]
    wanted = [s for s in cut if asked.draw(st.booleans())]
    reader = chunks.ChunkReader(state, wanted)
    entries = list(counters.items())
    for span in wanted:
        assert reader.entries(span) == entries[span[2] : span[3]]
