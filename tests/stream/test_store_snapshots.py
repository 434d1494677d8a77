"""The sink's rounds of wallet snapshots (engine/stream/store_snapshots.py) on a real SQLite
store, without a broker: a round every N events appended, of the wallets with new events,
in a process of its own or on a thread; a wallet's state from its latest snapshot and the
events after it is the fold of its whole stream; a failed round is counted and its wallets
are taken in the next one; nothing but the snapshot table is written. (The sink running
them: tests/stream/test_sink.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store.helpers import Rated

from engine.domain import initial_state
from engine.store import open_store
from engine.store.base import EventStore, WalletSnapshot
from engine.store.snapshots import fold, wallet_state
from engine.stream.metrics import SinkMetrics
from engine.stream.store_snapshots import StoreSnapshots


@pytest.fixture(scope="module")
def rated() -> Rated:
    return Rated(cdrs=400, seed=7)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
def store(url: str) -> Iterator[EventStore]:
    s = open_store(url)
    yield s
    s.close()


def feed(store: EventStore, snapshots: StoreSnapshots, rated: Rated) -> None:
    """Append as the sink does, telling the snapshots after each durable append, and wait
    for each round before the next append so that every round is started."""
    for events, inputs in rated.decisions:
        stored = store.append(events, inputs)
        snapshots.appended({e.wallet_id for e in events}, stored)
        snapshots.wait()


def expected_rounds(rated: Rated, every: int) -> int:
    """A round each time ``every`` events have been appended since the last one began."""
    rounds = count = 0
    for events, _ in rated.decisions:
        count += len(events)
        if count >= every:
            rounds, count = rounds + 1, 0
    return rounds


def assert_folds_agree(store: EventStore) -> None:
    for wallet_id in store.wallets():
        events = store.read_stream(wallet_id)
        state, last_at, _ = wallet_state(store, wallet_id)
        assert state == fold(initial_state(wallet_id), events)
        assert last_at == max(e.at for e in events)


@pytest.mark.parametrize("own_process", [True, False], ids=["own-process", "thread"])
def test_a_round_every_n_events_of_the_wallets_with_new_ones(
    store: EventStore, url: str, rated: Rated, own_process: bool
) -> None:
    every = 100
    metrics = SinkMetrics()
    snapshots = StoreSnapshots(store, every, metrics, url if own_process else None)
    feed(store, snapshots, rated)
    snapshots.close()
    assert snapshots.failures == 0
    assert snapshots.rounds == expected_rounds(rated, every)
    assert snapshots.last is not None and snapshots.written > 0
    assert metrics.snapshots._value.get() == snapshots.written
    assert metrics.snapshot_position._value.get() == snapshots.last.position
    # Each round folded only what came after each wallet's previous snapshot.
    assert any(store.latest_snapshot(w) is not None for w in store.wallets())
    assert_folds_agree(store)
    # The events are the run's, untouched.
    assert [e.event_id for b in store.read_all() for e in b] == [e.id for e in rated.events]
    assert store.verify() == []


def test_none_when_n_is_zero(store: EventStore, url: str, rated: Rated) -> None:
    snapshots = StoreSnapshots(store, 0, SinkMetrics(), url)
    feed(store, snapshots, rated)
    snapshots.close()
    assert (snapshots.rounds, snapshots.written) == (0, 0)
    assert all(store.latest_snapshot(w) is None for w in store.wallets())


class RefusingSnapshots:
    """A store that appends and reads, and refuses the first ``refusals`` snapshot writes."""

    def __init__(self, store: EventStore, refusals: int) -> None:
        self.store = store
        self.refusals = refusals

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def put_snapshots(self, snapshots: list[WalletSnapshot]) -> int:
        if self.refusals > 0:
            self.refusals -= 1
            raise RuntimeError("the snapshot table is away")
        return self.store.put_snapshots(snapshots)


def test_a_failed_round_is_counted_and_its_wallets_are_taken_in_the_next(
    store: EventStore, rated: Rated
) -> None:
    refusing = RefusingSnapshots(store, refusals=1)
    metrics = SinkMetrics()
    snapshots = StoreSnapshots(refusing, 100, metrics)  # type: ignore[arg-type]
    half = len(rated.decisions) // 2
    first_wallets: set[str] = set()
    for n, (events, inputs) in enumerate(rated.decisions):
        stored = store.append(events, inputs)
        snapshots.appended({e.wallet_id for e in events}, stored)
        snapshots.wait()
        if snapshots.failures and not first_wallets:
            first_wallets = set(store.wallets())  # those of the failed round, among others
        if n == half:
            break
    snapshots.close()
    assert snapshots.failures == 1 and metrics.snapshot_failures._value.get() == 1
    assert snapshots.rounds >= 1
    # The failed round's wallets were in a later one: each has its snapshot.
    assert first_wallets and all(store.latest_snapshot(w) is not None for w in first_wallets)
    assert_folds_agree(store)
    assert store.verify() == []
