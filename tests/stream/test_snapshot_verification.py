"""Recovery checks a snapshot against the log before trusting it (processor.recover): a
snapshot names the last decision it folded and that decision's offset on wallet.events;
when the log holds another decision there (or none), the whole partition is replayed."""

from __future__ import annotations

import functools

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.catalog import load_catalog
from engine.codec import Decision, decode_decision, encode
from engine.domain import Cdr
from engine.domain.routing import wallet_of
from engine.offline.generate import generate_cdrs
from engine.stream.processor import (
    PartitionState,
    RatingProcessor,
    decision_id,
    rebuild,
    recover,
)
from engine.stream.snapshots import decode_partition, encode_partition

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
    _, decoded = decode_partition(encode_partition(0, state))
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
    state, count, source = recover(_snapshot_after(written, half), *_readers(written))
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
    state, count, source = recover(stale, *_readers(written))
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
    state, _, source = recover(snapshot, lambda offset: None, after)
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
    state, _, source = recover(snapshot, *_readers(written))
    assert source == ("mismatch" if forged else "snapshot")
    assert state.wallets == live.partitions[0].wallets
    assert state.decided == live.partitions[0].decided
    assert state.events_offset == len(written) - 1
