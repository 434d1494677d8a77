"""Recovery checks a snapshot against the log before trusting it (processor.recover): a
snapshot names the last decision it folded and that decision's offset on wallet.events;
when the log holds another decision there (or none), the whole partition is replayed. A
snapshot is a record per wallet (its ids in chunks) and a manifest: read back as compaction
leaves them, they are the state of a full fold, and one that is not whole is not used."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.catalog import load_catalog
from engine.codec import Decision, decode_decision, encode
from engine.domain import Cdr
from engine.domain.routing import wallet_of
from engine.offline.generate import generate_cdrs
from engine.stream import chunks
from engine.stream.metrics import Metrics
from engine.stream.ownership import recovered_from
from engine.stream.processor import (
    PartitionState,
    RatingProcessor,
    decision_id,
    rebuild,
    recover,
)
from engine.stream.settings import WorkerSettings
from engine.stream.snapshots import encode_partition, restore
from engine.stream.snapshotter import Snapshotter

from .harness import CATALOG

RAW = "cdr.raw"
Log = list[tuple[int, Decision]]


@functools.cache
def _decided() -> tuple[RatingProcessor, Log]:
    """1,000 CDRs decided on one partition, and the decisions as wallet.events holds them."""
    catalog = load_catalog(CATALOG)
    processor = RatingProcessor(catalog)
    processor.recover(0, [])
    written: Log = []
    for offset, line in enumerate(generate_cdrs(catalog, 200, 1000, seed=5, faults=0.0)):
        cdr = msgspec.json.decode(line, type=Cdr)
        wallet = wallet_of(catalog, {}, cdr.iccid, 0)
        assert wallet is not None
        decision = processor.decide(0, wallet, cdr, (RAW, 0, offset))
        if decision is not None:
            written.append((len(written), decode_decision(encode(decision))))
    return processor, written


@pytest.fixture
def log() -> tuple[RatingProcessor, Log]:
    return _decided()


def _readers(written: Log):  # type: ignore[no-untyped-def]
    at = dict(written)
    return (
        lambda offset: at.get(offset),
        lambda after: [(o, d) for o, d in written if o > after],
    )


def _snapshot_after(written: Log, cut: int) -> PartitionState:
    """The snapshot an owner writes after folding the first ``cut`` decisions, through its
    encoding, as recovery reads it."""
    state, _ = rebuild(written[:cut])
    decoded, _ = restore(encode_partition(0, state), 0)
    assert decoded is not None
    return decoded


def test_a_snapshot_names_its_last_decision_and_keeps_it_through_encoding(
    log: tuple[RatingProcessor, Log],
) -> None:
    _, written = log
    snapshot = _snapshot_after(written, 10)
    assert snapshot.events_offset == 9
    assert snapshot.last_decision == decision_id(written[9][1])


def test_a_snapshot_that_matches_the_log_is_trusted_and_only_the_tail_is_folded(
    log: tuple[RatingProcessor, Log],
) -> None:
    live, written = log
    half = len(written) // 2
    state, count, source, _ = recover(_snapshot_after(written, half), *_readers(written))
    assert source == "snapshot"
    assert count == len(written) - half
    assert state.wallets == live.partitions[0].wallets


def test_the_paused_workers_snapshot_is_caught_and_the_whole_log_replayed(
    log: tuple[RatingProcessor, Log],
) -> None:
    """The bug this guards against: a worker that lost the partition wrote a snapshot with
    old state but an offset at the end of the log (its own late decision's). Folding only
    what follows it would forget every charge in between."""
    live, written = log
    stale = _snapshot_after(written, len(written) // 3)
    stale.events_offset = len(written) - 1  # where its own late record landed
    stale.last_decision = "cdr.raw/0@999999"  # its late decision, not the one in the log
    state, count, source, _ = recover(stale, *_readers(written))
    assert source == "mismatch"
    assert count == len(written)
    assert state.wallets == live.partitions[0].wallets
    assert state.decided == live.partitions[0].decided


def test_a_snapshot_naming_a_decision_the_log_does_not_hold_is_not_trusted(
    log: tuple[RatingProcessor, Log],
) -> None:
    """Its decision was aborted (a fenced transaction) or lies beyond the end."""
    live, written = log
    snapshot = _snapshot_after(written, 100)
    _, after = _readers(written)
    state, _, source, _ = recover(snapshot, lambda offset: None, after)
    assert source == "mismatch"
    assert state.wallets == live.partitions[0].wallets


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(1, 400), shift=st.integers(-50, 50), forged=st.booleans())
def test_recovery_from_any_snapshot_true_or_stale_equals_the_live_state(
    cut: int, shift: int, forged: bool
) -> None:
    live, written = _decided()
    snapshot = _snapshot_after(written, cut)
    if forged:  # an offset elsewhere in the log, or a decision that is not there
        moved = max(0, snapshot.events_offset + shift)
        if moved == snapshot.events_offset:
            snapshot.last_decision = "elsewhere/0@0"
        snapshot.events_offset = moved
    state, _, source, _ = recover(snapshot, *_readers(written))
    assert source == ("mismatch" if forged else "snapshot")
    assert state.wallets == live.partitions[0].wallets
    assert state.decided == live.partitions[0].decided
    assert state.events_offset == len(written) - 1


# -- per-wallet snapshots: records written over time, read back as compaction leaves them --


class _Writer:
    """The snapshot partition: what each snapshot (transaction) added, in order."""

    def __init__(self) -> None:
        self.transactions: list[list[tuple[bytes, bytes]]] = []

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.transactions[-1].append((key, value))


def _snapshots_while_deciding(written: Log, cuts: list[int], max_bytes: int = 900_000) -> _Writer:
    """The records an owner writes when it snapshots after each of ``cuts`` decisions (one
    epoch: the first snapshot writes every wallet, the later ones what changed)."""
    processor = RatingProcessor(load_catalog(CATALOG))
    processor.recover(0, [])
    snapshotter = Snapshotter(
        WorkerSettings(catalog=CATALOG, snapshot_max_bytes=max_bytes, data_dir=Path()),
        "wallet.snapshots",
        processor,
        Metrics(),
    )
    writer = _Writer()
    done = 0
    for cut in sorted(set(cuts)):
        processor.partitions[0], _ = rebuild(written[done:cut], processor.partitions[0])
        done = cut
        writer.transactions.append([])
        snapshotter.write(0, writer)  # type: ignore[arg-type]
    return writer


def _recover_from(records: list[tuple[bytes, bytes]], written: Log):  # type: ignore[no-untyped-def]
    """What the worker recovers (ownership.recovered_from), and whether a snapshot was there
    but unusable."""
    torn = restore(records, 0) == (None, True)
    return recovered_from(records, 0, *_readers(written)), torn


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 999), min_size=1, max_size=6),
    chunk=st.sampled_from([3, 50, 4096]),
)
def test_a_restart_from_per_wallet_snapshots_recovers_the_state_of_a_full_fold(
    cuts: list[int], chunk: int
) -> None:
    live, written = _decided()
    cuts = [min(c, len(written)) for c in cuts]
    with _chunked(chunk):
        writer = _snapshots_while_deciding(written, cuts)
    records = [r for t in writer.transactions for r in t]
    found, torn = _recover_from(records, written)
    assert not torn and found.source == "snapshot"
    assert found.decisions == len(written) - max(cuts)
    assert found.state.wallets == live.partitions[0].wallets
    assert found.state.decided == live.partitions[0].decided
    # The last snapshot wrote the wallets that changed since the one before, and only
    # wallets some decision in between was for.
    ordered = sorted(set(cuts))
    if len(ordered) > 1:
        before, after = rebuild(written[: ordered[-2]])[0], rebuild(written[: ordered[-1]])[0]
        changed = {w for w, s in after.wallets.items() if before.wallets.get(w) != s}
        touched = {d.wallet_id for _, d in written[ordered[-2] : ordered[-1]]}
        wallets = {k[7:].decode() for k, _ in writer.transactions[-1] if k[:7] == b"wallet/"}
        assert changed <= wallets <= touched


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 999), min_size=2, max_size=5, unique=True),
    drop=st.integers(0, 10_000),
)
@example(cuts=[1, 209], drop=76)  # the latest manifest lost: its wallets are newer
def test_a_torn_snapshot_is_never_used_and_recovery_stays_exact(cuts: list[int], drop: int) -> None:
    """A record of the latest snapshot lost (a wallet, a chunk of its ids, or the manifest
    itself): never trusted as a snapshot of another offset; recovery is exact anyway."""
    live, written = _decided()
    with _chunked(3):
        writer = _snapshots_while_deciding(written, cuts)
    last = writer.transactions[-1]
    lost = last[drop % len(last)]
    records = [r for t in writer.transactions for r in t if r is not lost]
    found, _ = _recover_from(records, written)
    assert found.state.wallets == live.partitions[0].wallets
    assert found.state.decided == live.partitions[0].decided
    if lost[0].startswith(b"partition-") and len(last) > 1:
        # Its wallets are newer than the manifest left (the previous one): not used.
        assert found.source == "mismatch"


def _owner_after_recovery(
    records: list[tuple[bytes, bytes]], upto: int, written: Log
) -> tuple[RatingProcessor, Snapshotter, str]:
    """A new owner of partition 0 that recovered from ``records`` and the first ``upto``
    decisions of the log (ownership._install: the processor, then the snapshotter)."""
    recovered = recovered_from(records, 0, *_readers(written[:upto]))
    processor = RatingProcessor(load_catalog(CATALOG))
    processor.install(0, recovered.state)
    snapshotter = Snapshotter(
        WorkerSettings(catalog=CATALOG, data_dir=Path()), "wallet.snapshots", processor, Metrics()
    )
    snapshotter.recovered(0, recovered.state.events_offset, recovered.written)
    return processor, snapshotter, recovered.source


@settings(max_examples=40, deadline=None)
@given(
    first=st.lists(st.integers(1, 600), min_size=1, max_size=3),
    gap=st.integers(0, 150),
    later=st.lists(st.integers(1, 200), min_size=1, max_size=3),
    chunk=st.sampled_from([3, 50, 4096]),
    rechunk=st.sampled_from([None, 2, 3, 4, 50]),
    drop=st.none() | st.integers(0, 10_000),
)
@example(first=[300], gap=0, later=[1], chunk=3, rechunk=None, drop=None)
def test_an_epoch_carried_over_a_recovery_writes_only_what_changed_and_recovers_exactly(
    first: list[int],
    gap: int,
    later: list[int],
    chunk: int,
    rechunk: int | None,
    drop: int | None,
) -> None:
    """An owner snapshots, a new owner recovers from that snapshot and the log after it,
    decides a little more and snapshots in the same epoch (only the wallets that changed
    since the snapshot it read, and of them the id chunks that changed, whatever chunk size
    the new owner has), then a third owner recovers: exactly the full fold, from the
    snapshot; and with any record of the latest snapshot lost, still exactly."""
    live, written = _decided()
    first = [min(c, len(written)) for c in first]
    read_at = min(max(first) + gap, len(written))  # the log when the second owner recovers
    with _chunked(chunk):
        old = _snapshots_while_deciding(written, first)
    records = [r for t in old.transactions for r in t]
    with _chunked(rechunk or chunk):
        processor, snapshotter, source = _owner_after_recovery(records, read_at, written)
        assert source == "snapshot"
        epoch = snapshotter.epochs[0].id
        new = _Writer()
        done = read_at
        for cut in sorted({min(read_at + c, len(written)) for c in later}):
            processor.partitions[0], _ = rebuild(written[done:cut], processor.partitions[0])
            done = cut
            new.transactions.append([])
            snapshotter.write(0, new)  # type: ignore[arg-type]
    assert snapshotter.epochs[0].id == epoch  # the epoch went on
    # Its first snapshot wrote only wallets decided on after the snapshot it read.
    touched = {d.wallet_id for _, d in written[max(first) : min(read_at + min(later), done)]}
    wallets = {k[7:].decode() for k, _ in new.transactions[0] if k[:7] == b"wallet/"}
    assert wallets <= touched
    last = new.transactions[-1]
    lost = last[drop % len(last)] if drop is not None else None
    everything = [r for t in old.transactions + new.transactions for r in t if r is not lost]
    found, torn = _recover_from(everything, written)
    assert found.state.wallets == live.partitions[0].wallets
    assert found.state.decided == live.partitions[0].decided
    if lost is None:
        assert not torn and found.source == "snapshot"
        assert found.decisions == len(written) - done
        assert found.written is not None and found.written.epoch == epoch
    elif lost[0].startswith(b"partition-") and len(last) > 1:
        assert found.source == "mismatch"  # its wallets are newer than the manifest left


def test_a_snapshot_that_did_not_match_the_log_starts_a_new_epoch() -> None:
    _, written = _decided()
    old = _snapshots_while_deciding(written, [100])
    records = [r for t in old.transactions for r in t]
    # The log holds another decision at the snapshot's offset: replayed whole, new epoch.
    forged = [(o, d) for o, d in written if o != 99]
    recovered = recovered_from(records, 0, lambda o: dict(forged).get(o), lambda a: [])
    assert recovered.source == "mismatch" and recovered.written is None
    _, snapshotter, _ = _owner_after_recovery(records[:-1], 100, written)  # no manifest
    assert 0 not in snapshotter.epochs


def test_an_earlier_epochs_records_and_another_partitions_are_not_used() -> None:
    live, written = _decided()
    old = _snapshots_while_deciding(written, [100, 200])
    new = _snapshots_while_deciding(written, [300])
    records = [r for t in old.transactions + new.transactions for r in t]
    found, torn = _recover_from(records, written)
    assert (found.source, torn) == ("snapshot", False)
    assert found.state.wallets == live.partitions[0].wallets
    assert restore(records, 1) == (None, True)  # written for partition 0


def test_a_snapshot_in_the_former_single_record_format_is_replayed_over() -> None:
    live, written = _decided()
    former = msgspec.msgpack.encode([0, 10, [], [], [], "cdr.raw/0@10"])
    found, torn = _recover_from([(b"partition-0", former)], written)
    assert torn and found.source == "mismatch"
    assert found.state.wallets == live.partitions[0].wallets


@contextlib.contextmanager
def _chunked(size: int, entries: int | None = None) -> Iterator[None]:
    """Chunks of ``size`` ids, and of ``entries`` (or ``size``) entries of any map larger
    than that."""
    saved = chunks.CHUNK_IDS, chunks.CHUNK_ENTRIES
    chunks.CHUNK_IDS, chunks.CHUNK_ENTRIES = size, entries or size
    try:
        yield
    finally:
        chunks.CHUNK_IDS, chunks.CHUNK_ENTRIES = saved
