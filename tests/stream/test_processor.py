"""The rating processor and its snapshots, without a broker: recovery is exact."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from engine.catalog import load_catalog
from engine.codec import Decision, decode_decision, encode
from engine.domain import Cdr, WalletState
from engine.domain.routing import wallet_of
from engine.offline.generate import generate_cdrs
from engine.stream.processor import (
    REORDER_WINDOW,
    PartitionState,
    RatingProcessor,
    decision_id,
    recover,
)
from engine.stream.snapshots import StateRecord, encode_partition, restore

from .harness import CATALOG

RAW = "cdr.raw"


@pytest.fixture(scope="module")
def run() -> tuple[RatingProcessor, list[tuple[int, Decision]], list[tuple[Cdr, str, int]]]:
    """3,000 CDRs decided on one partition, with the decisions as they would be written."""
    catalog = load_catalog(CATALOG)
    cdrs = []
    for offset, line in enumerate(generate_cdrs(catalog, 300, 3000, seed=9, faults=0.0)):
        cdr = msgspec.json.decode(line, type=Cdr)
        wallet = wallet_of(catalog, {}, cdr.iccid, 0)
        assert wallet is not None
        cdrs.append((cdr, wallet, offset))
    processor = RatingProcessor(catalog)
    processor.recover(0, [])
    written = []
    for cdr, wallet, offset in cdrs:
        decision = processor.decide(0, wallet, cdr, (RAW, 0, offset))
        if decision is not None:
            # Through the codec, as the worker writes and reads them.
            written.append((len(written), decode_decision(encode(decision))))
    return processor, written, cdrs


def test_recovery_from_decisions_equals_live(run: tuple) -> None:  # type: ignore[type-arg]
    live, written, _ = run
    fresh = RatingProcessor(live.catalog)
    assert fresh.recover(0, written) == len(written)
    assert fresh.partitions[0].wallets == live.partitions[0].wallets
    assert fresh.partitions[0].decided == live.partitions[0].decided
    assert fresh.partitions[0].recent == live.partitions[0].recent


def test_earlier_offsets_arriving_late_are_decided_not_taken_as_seen(
    run: tuple,  # type: ignore[type-arg]
) -> None:
    """A cdr.raw partition's new owner can deliver earlier offsets after the old owner's
    later ones: each is decided once, whatever the order."""
    live, _, cdrs = run
    shuffled = RatingProcessor(live.catalog)
    shuffled.recover(0, [])
    late, early = cdrs[len(cdrs) // 2 :], cdrs[: len(cdrs) // 2]
    decided: list[str] = []
    for cdr, wallet, offset in [*late, *early, *late]:  # the later half, then all again
        decision = shuffled.decide(0, wallet, cdr, (RAW, 0, offset))
        if decision is not None:
            decided.append(decision.input)
    assert sorted(decided) == sorted(cdr.key for cdr, _, _ in cdrs)  # each once
    for _, _, offset in cdrs:
        assert shuffled.already_decided(0, (RAW, 0, offset))
    assert shuffled.partitions[0].recent == live.partitions[0].recent


def test_snapshot_plus_tail_equals_live(run: tuple) -> None:  # type: ignore[type-arg]
    live, written, _ = run
    half = len(written) // 2
    partial = RatingProcessor(live.catalog)
    partial.recover(0, written[:half])
    part = partial.partitions[0]
    snapshot, _ = restore(encode_partition(0, part), 0)
    assert snapshot is not None
    assert snapshot.events_offset == half - 1 and snapshot.wallets == part.wallets
    assert snapshot.decided == part.decided
    # Offsets below the reorder window are decided without the set: only those above it
    # are kept.
    assert snapshot.recent == {
        tp: {o for o in offsets if o > part.decided[tp] - REORDER_WINDOW}
        for tp, offsets in part.recent.items()
    }
    restored = RatingProcessor(live.catalog)
    # The whole log is offered: what the snapshot already holds is skipped by offset.
    count = restored.recover(0, written, snapshot)
    assert count == len(written) - half
    assert restored.partitions[0].wallets == live.partitions[0].wallets


def test_redelivered_inputs_are_recognised_and_decide_nothing(run: tuple) -> None:  # type: ignore[type-arg]
    live, written, cdrs = run
    restored = RatingProcessor(live.catalog)
    restored.recover(0, written)
    for cdr, wallet, offset in cdrs[-50:]:
        assert restored.already_decided(0, (RAW, 0, offset))
        assert restored.decide(0, wallet, cdr, (RAW, 0, offset)) is None
    assert restored.partitions[0].wallets == live.partitions[0].wallets


def test_a_record_written_twice_is_folded_once(run: tuple) -> None:  # type: ignore[type-arg]
    live, written, _ = run
    doubled = []
    for offset, decision in written:
        doubled.append((2 * offset, decision))
        doubled.append((2 * offset + 1, decision))  # a retried produce landed twice
    restored = RatingProcessor(live.catalog)
    restored.recover(0, doubled)
    assert restored.partitions[0].wallets == live.partitions[0].wallets


def test_state_record_mirrors_every_wallet_state_field() -> None:
    assert [f for f in StateRecord.__struct_fields__] == list(WalletState.__struct_fields__)


def test_the_reorder_window_is_bounded_and_answers_the_same_below_it() -> None:
    part = PartitionState()
    total = 3 * REORDER_WINDOW
    hole = total - 10  # the one offset that has not arrived yet
    for offset in range(total):
        if offset != hole:
            part.mark(RAW, 0, offset)
    assert len(part.recent[(RAW, 0)]) <= 2 * REORDER_WINDOW
    top = total - 1
    assert not part.seen(RAW, 0, hole)  # inside the window: still to be decided
    assert part.seen(RAW, 0, hole - 1) and part.seen(RAW, 0, top)
    assert part.seen(RAW, 0, top - REORDER_WINDOW - 1)  # below it: taken as decided
    assert not part.seen(RAW, 0, top + 1)


OLD_RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "store_v1" / "decisions.jsonl"


def test_recovery_reads_wallet_events_written_before_the_rename() -> None:
    """Records on wallet.events keep the names they were written with: recovery folds one
    with ``BarSims`` / ``UnbarSims`` as it folds the same record with the current names, and
    a snapshot taken before the rename still matches the log (a decision is named by its
    origin, never by its events)."""
    raw = OLD_RECORDS.read_bytes().splitlines()
    assert all(b'Sims"' in r for r in raw)
    renamed = [
        r.replace(b'"BarSims"', b'"SimsBarred"').replace(b'"UnbarSims"', b'"SimsUnbarred"')
        for r in raw
    ]
    catalog = load_catalog(CATALOG)
    old, new = RatingProcessor(catalog), RatingProcessor(catalog)
    old.recover(0, [(n, decode_decision(r)) for n, r in enumerate(raw)])
    new.recover(0, [(n, decode_decision(r)) for n, r in enumerate(renamed)])
    assert old.partitions[0].wallets == new.partitions[0].wallets
    assert old.partitions[0].wallets["initech"].suspended is False
    part = old.partitions[0]
    assert part.last_decision == decision_id(decode_decision(raw[-1]))
    snapshot, _ = restore(encode_partition(0, part), 0)
    found = recover(
        snapshot,
        lambda offset: decode_decision(raw[offset]),
        lambda after: [(n, decode_decision(r)) for n, r in enumerate(raw) if n > after],
    )
    assert found.source == "snapshot"
    assert found.state.wallets == part.wallets
