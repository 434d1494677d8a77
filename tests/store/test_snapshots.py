"""Wallet snapshots in the event store (SQLite and PostgreSQL): a wallet's state from its
latest snapshot and the events after it is the fold of its whole stream; a snapshot is
taken only of wallets with new events, folding only those; and replay gives the same
result whether a wallet starts from a stored snapshot or from the full fold of its events
to the same cut."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.catalog import load_catalog
from engine.codec import decode_event
from engine.domain import AdjustRating, WalletState, evolve, initial_state
from engine.offline.replay import replay
from engine.offline.replay_shard import COMPARED, ReadStream, ShardReplay
from engine.states import decode_state, encode_state
from engine.store import EventStore
from engine.store.base import WalletSnapshot
from engine.store.snapshots import take, wallet_state

from .helpers import CATALOG, Rated

CHANGES = (
    ('EU: {price: "0.05"}', 'EU: {price: "0.06"}'),
    ('APAC: {price: "0.15", per: MB}', 'APAC: {price: "0.17", per: MB}'),
    (
        'usage: {telco-a: 55, platform: "33.3333", reseller: "11.6667"}',
        'usage: {telco-a: 50, platform: "38.3333", reseller: "11.6667"}',
    ),
)


def _full_fold(store: EventStore, wallet_id: str, position: int | None = None) -> WalletState:
    state = initial_state(wallet_id)
    for row in store.read_stream(wallet_id):
        if position is None or row.position <= position:
            state = evolve(state, decode_event(row.payload))
    return state


def _append(store: EventStore, rated: Rated, part: slice) -> None:
    for events, inputs in rated.decisions[part]:
        store.append(events, inputs)


def test_a_wallets_state_from_its_snapshot_and_the_tail_is_its_full_fold(
    store: EventStore, rated: Rated
) -> None:
    half = len(rated.decisions) // 2
    _append(store, rated, slice(None, half))
    first = take(store)
    wallets = store.wallets()
    assert first.written == len(wallets) and first.position == store.position()
    assert take(store).written == 0  # nothing new since
    _append(store, rated, slice(half, None))
    second = take(store)
    # Only the events after each wallet's snapshot were folded for the second one.
    assert second.folded == store.position() - first.position
    for w in store.wallets():
        state, last_at, folded = wallet_state(store, w)
        assert state == _full_fold(store, w)
        assert folded == 0
        assert last_at == max(e.at for e in store.read_stream(w))
        # ... and as of the first cut, from the first snapshot.
        if w in wallets:
            assert wallet_state(store, w, first.position)[0] == _full_fold(store, w, first.position)
            snap = store.latest_snapshot(w, first.position)
            assert snap is not None and decode_state(snap.state) == _full_fold(
                store, w, first.position
            )


def test_the_latest_snapshot_before_an_instant(store: EventStore, rated: Rated) -> None:
    half = len(rated.decisions) // 2
    _append(store, rated, slice(None, half))
    take(store)
    _append(store, rated, slice(half, None))
    take(store)
    for w in store.wallets():
        newest = store.latest_snapshot(w)
        assert newest is not None and newest.last_at is not None
        assert newest.position == store.position() or w not in {
            e.wallet_id for events, _ in rated.decisions[half:] for e in events
        }
        older = store.latest_snapshot(w, before=newest.last_at)
        assert older is None or (
            older.position < newest.position
            and older.last_at is not None
            and older.last_at < newest.last_at
        )
    assert store.latest_snapshot("no-such-wallet") is None


def test_a_replays_payer_starts_from_the_latest_snapshot_and_is_the_full_fold(
    store: EventStore, rated: Rated, catalogs: tuple[Any, Any]
) -> None:
    """A wallet that pays its own adjustments is taken as its latest snapshot and the events
    after it, from the events the replay already read, or read when those do not hold them
    all or none are at hand: the state is its full fold, and its latest instant the latest
    of its stream, whatever the events read hold."""
    _, new = catalogs
    half = len(rated.decisions) // 2
    _append(store, rated, slice(None, half))
    take(store)
    _append(store, rated, slice(half, None))
    checked = 0
    for w in store.wallets():
        snap = store.latest_snapshot(w)
        rows = store.read_stream(w)
        tail = [r for r in rows if snap is None or r.position > snap.position]
        since = 0 if snap is None else snap.position
        end = rows[-1].position
        # Everything read; what a comparison reads (the compared events, and all since the
        # snapshot); only the compared events (too little: the payer reads); nothing.
        for stored in (
            ReadStream.of(snap, 0, rows),
            ReadStream.of(snap, since, store.read_stream(w, 0, COMPARED, since)),
            ReadStream.of(snap, end, store.read_stream(w, 0, COMPARED, end)),
            None,
        ):
            shard = ShardReplay(store, new, "t", dry_run=True, tick=lambda n: None)
            payer = shard.payer(w, stored)
            assert payer.state == _full_fold(store, w)
            assert payer.last == max(r.at for r in rows)
            checked += bool(snap and tail)
    assert checked  # some wallet had a snapshot and events after it


class _FoldedBase:
    """The store, but each snapshot's state is the full fold of the wallet's events to the
    snapshot's cut (what replay would start from with no snapshot stored)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.folded = 0

    def latest_snapshot(self, wallet_id: str, *args: Any, **kwargs: Any) -> WalletSnapshot | None:
        snap = self.store.latest_snapshot(wallet_id, *args, **kwargs)
        if snap is None:
            return None
        self.folded += 1
        state = _full_fold(self.store, wallet_id, snap.position)
        return WalletSnapshot(
            wallet_id, snap.position, snap.input_seq, snap.last_at, encode_state(state)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def catalogs(tmp_path: Any) -> Iterator[tuple[Any, Any]]:
    text = CATALOG.read_text()
    for before, after in CHANGES:
        text = text.replace(before, after, 1)
    (tmp_path / "new.yaml").write_text(text)
    yield load_catalog(CATALOG), load_catalog(tmp_path / "new.yaml")


def _snapshotted_before_the_second_half(store: EventStore, rated: Rated) -> datetime:
    """The first half stored and snapshotted, then the second half; the instant between."""
    half = len(rated.decisions) // 2
    _append(store, rated, slice(None, half))
    take(store)
    start = max(e.at for events, _ in rated.decisions[:half] for e in events)
    _append(store, rated, slice(half, None))
    return start + timedelta(seconds=1)


def test_replay_from_a_snapshot_equals_replay_from_the_full_fold(
    store: EventStore, rated: Rated, catalogs: tuple[Any, Any]
) -> None:
    _, new = catalogs
    start = _snapshotted_before_the_second_half(store, rated)
    assert all(store.latest_snapshot(w, before=start) for w in store.wallets())

    def run(s: Any, **kwargs: Any) -> Any:
        return replay(s, new, start=start, dry_run=True, **kwargs)

    folded = _FoldedBase(store)
    from_snapshot = run(store, from_snapshots=True)
    from_fold = run(folded, from_snapshots=True)
    assert folded.folded >= len(store.wallets())
    assert from_snapshot == from_fold
    assert from_snapshot.rerated > 0 and from_snapshot.changed > 0
    # The payers' states from a snapshot and the events after it: the same report as from
    # the whole stream, snapshots or not.
    take(store)
    assert run(store) == run(_NoSnapshots(store))


def _bar_ended_at(capsys: pytest.CaptureFixture[str], total: int) -> None:
    """The progress bar's last state is ``total`` of ``total``."""
    bar = capsys.readouterr().err.strip().split("\r")[-1]
    assert f" {total}/{total} " in bar, bar


def test_a_replays_progress_counts_to_the_inputs_it_re_rates(
    store: EventStore,
    rated: Rated,
    catalogs: tuple[Any, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """From snapshots, a wallet re-rates only its inputs after its snapshot, and the bar
    counts to that, not to every input in the store."""
    _, new = catalogs
    start = _snapshotted_before_the_second_half(store, rated)
    cuts = {}
    for w in store.wallets():
        base = store.latest_snapshot(w, before=start)
        assert base is not None
        cuts[w] = base.input_seq
    window = sum(store.input_counts(cuts).values())
    everything = store.stats().inputs
    assert 0 < window < everything
    for kwargs, total in (({"from_snapshots": True}, window), ({}, everything)):
        replay(store, new, start=start, dry_run=True, progress=True, **kwargs)
        _bar_ended_at(capsys, total)


def test_a_replay_after_a_replay_neither_reads_nor_counts_its_corrections(
    store: EventStore,
    rated: Rated,
    catalogs: tuple[Any, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A replay stores a correction (``AdjustRating``) per CDR it changed, as an input. The
    next replay re-rates without reading them, as it did when it read and skipped them,
    and its bar counts to the inputs it re-rates."""
    _, new = catalogs
    _append(store, rated, slice(None))
    assert replay(store, new).changed > 0
    corrections = sum(isinstance(i.item, AdjustRating) for i in store.read_inputs())
    assert corrections > 0
    total = store.stats().inputs - corrections
    again = replay(store, new, dry_run=True, progress=True)
    _bar_ended_at(capsys, total)
    assert again.changed == 0 and again.rerated > 0
    assert again == replay(_EveryInput(store), new, dry_run=True)


class _EveryInput:
    """A store that reads and counts a replay's corrections even when asked not to."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def read_inputs(self, wallet_id: Any = None, after: int = 0, corrections: bool = True) -> Any:
        return self.store.read_inputs(wallet_id, after)

    def input_counts(self, after: Any = None, corrections: bool = True) -> Any:
        return self.store.input_counts(after)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class _NoSnapshots:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def latest_snapshot(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_an_instant_in_the_window_is_never_in_the_snapshot_used(
    store: EventStore, rated: Rated
) -> None:
    _append(store, rated, slice(None, None))
    take(store)
    for w in store.wallets():
        snap = store.latest_snapshot(w)
        assert snap is not None and snap.last_at is not None
        assert store.latest_snapshot(w, before=snap.last_at) is None
        later: datetime = snap.last_at + timedelta(microseconds=1)
        assert store.latest_snapshot(w, before=later) == snap
