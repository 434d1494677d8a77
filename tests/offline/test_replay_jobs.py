"""A replay shared among processes gives what one process gives: the same adjustments (ids,
payloads and order in the store), the same commands sent to the owners (ids, instants, and
order per paying wallet), the same report; and a job that fails fails the replay, clearly."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.replay import Rated, rated_store

from engine.codec import encode
from engine.domain import AdjustRating
from engine.offline.replay import ReplayReport, replay
from engine.offline.replay_jobs import Plan, ReplayJobError, shards
from engine.store import EventStore, StoreError, open_store
from engine.stream.routed import partition_of


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Rated:
    return rated_store(tmp_path_factory.mktemp("replay-jobs"), 300, 4000, seed=5)


def _copy(rated: Rated, path: Path) -> str:
    shutil.copy(rated.store, path)
    return f"sqlite:///{path}"


def _offline(rated: Rated, tmp_path: Path, jobs: int) -> tuple[ReplayReport, list[bytes]]:
    url = _copy(rated, tmp_path / f"jobs-{jobs}.db")
    store = open_store(url)
    try:
        start = store.position()
        report = replay(store, rated.new_catalog, jobs=jobs, opener=lambda: open_store(url))
        written = [r.payload for rows in store.read_all(after=start) for r in rows]
        assert store.verify() == []
    finally:
        store.close()
    return report, written


@pytest.fixture(scope="module")
def one_job(
    rated: Rated, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ReplayReport, list[bytes]]:
    return _offline(rated, tmp_path_factory.mktemp("one-job"), 1)


@pytest.mark.parametrize("jobs", [2, 3])
def test_offline_the_store_gets_the_same_adjustments_whatever_the_jobs(
    rated: Rated,
    one_job: tuple[ReplayReport, list[bytes]],
    tmp_path: Path,
    jobs: int,
) -> None:
    report, written = _offline(rated, tmp_path, jobs)
    assert written == one_job[1]  # the same events, byte for byte, in the same order
    assert report == one_job[0]
    assert report.appended > 0 and report.changed > 0


def _sent(rated: Rated, tmp_path: Path, jobs: int) -> tuple[ReplayReport, list[AdjustRating]]:
    """A stream replay whose owners are a file: each job appends what it sends."""
    url = _copy(rated, tmp_path / f"stream-{jobs}.db")
    out = tmp_path / f"sent-{jobs}.jsonl"

    def send(commands: Sequence[AdjustRating]) -> int:
        with out.open("ab") as f:
            f.write(b"".join(encode(c) + b"\n" for c in commands))
        return len(commands)

    store = open_store(url)
    try:
        report = replay(
            store, rated.new_catalog, send=send, jobs=jobs, opener=lambda: open_store(url)
        )
    finally:
        store.close()
    lines = out.read_bytes().splitlines() if out.exists() else []
    return report, [msgspec.json.decode(line, type=AdjustRating) for line in lines]


def _per_payer(sent: list[AdjustRating]) -> dict[str, list[AdjustRating]]:
    out: dict[str, list[AdjustRating]] = {}
    for c in sent:
        out.setdefault(c.wallet_id, []).append(c)
    return out


@pytest.mark.parametrize("jobs", [2, 3])
def test_stream_the_owners_get_the_same_commands_in_the_same_order(
    rated: Rated, tmp_path: Path, jobs: int
) -> None:
    one, sent_one = _sent(rated, tmp_path, 1)
    many, sent_many = _sent(rated, tmp_path, jobs)
    assert many == one and one.published == len(sent_one) > 0
    # a wallet's owner decides its commands in the order its partition holds them
    assert _per_payer(sent_many) == _per_payer(sent_one)


def test_wallets_are_shared_out_by_partition_and_each_payer_has_one_job() -> None:
    wallets = [f"w{i}" for i in range(40)]
    plan = shards(wallets, 3, partitions=8)
    assert plan.jobs == 3
    placed = [w for shard in plan.shards for _, w in shard]
    assert sorted(placed) == sorted(wallets)  # each wallet once
    for k, shard in enumerate(plan.shards):
        assert all(plan.job_of(w) == k for _, w in shard)
        assert [i for i, _ in shard] == sorted(i for i, _ in shard)  # in run order
    by_partition: dict[int, set[int]] = {}
    for w in wallets:
        by_partition.setdefault(partition_of(w.encode(), 8), set()).add(plan.job_of(w))
    assert all(len(jobs) == 1 for jobs in by_partition.values())
    # never more jobs than partitions in use, nor than wallets
    assert shards(wallets, 20, partitions=8).jobs == 8
    assert shards(["only"], 4, partitions=8).jobs == 1
    assert 0 <= plan.job_of("a wallet not in the run") < 3


def test_one_wallet_is_replayed_here_without_counting_every_wallets_inputs(
    rated: Rated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--wallet`` with the default ``--jobs`` (the CPUs): no process is started, and the
    store is not asked to count the inputs of every wallet, which a large store scans, only
    those of the one wallet (the progress bar's total)."""
    url = _copy(rated, tmp_path / "one-wallet.db")
    store = open_store(url)
    wallet = store.wallets()[0]
    counted: list[object] = []
    counts = store.input_counts

    def count(after: dict[str, int] | None = None, corrections: bool = True) -> dict[str, int]:
        counted.append(after)
        return counts(after, corrections)

    monkeypatch.setattr(store, "input_counts", count)
    monkeypatch.setattr("engine.offline.replay_jobs.run_jobs", _no_processes)
    try:
        alone = replay(store, rated.new_catalog, wallet=wallet, dry_run=True)
        asked = replay(
            store,
            rated.new_catalog,
            wallet=wallet,
            dry_run=True,
            jobs=4,
            opener=lambda: open_store(url),
        )
    finally:
        store.close()
    assert counted == [{wallet: 0}, {wallet: 0}]
    assert asked == alone and alone.rerated > 0


def _no_processes(*args: object) -> None:
    raise AssertionError("a replay of one wallet started jobs")


def _loads(plan: Plan, sizes: dict[str, int]) -> list[int]:
    return [sum(max(1, sizes.get(w, 1)) for _, w in shard) for shard in plan.shards]


def test_the_jobs_get_alike_shares_of_the_inputs_not_of_the_partitions() -> None:
    """The example catalog's wallets in a store of 50,000 CDRs: dealt out in turn, the job
    with two partitions had 35,000 inputs to re-rate and the other 15,000."""
    sizes = {"acme": 15_175, "globex": 14_854, "initech": 4_957, "umbrella": 15_160}
    homes = {w: partition_of(w.encode(), 8) for w in sizes}
    assert homes["umbrella"] == homes["initech"] != homes["acme"] != homes["globex"]
    plan = shards(sorted(sizes), 2, partitions=8, sizes=sizes)
    assert sorted(_loads(plan, sizes)) == [20_117, 30_029]
    assert plan.job_of("umbrella") == plan.job_of("initech") != plan.job_of("acme")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh", min_size=1, max_size=6), st.integers(0, 10_000), min_size=2
    ),
    st.integers(2, 9),
)
def test_a_plan_is_never_far_from_even(sizes: dict[str, int], jobs: int) -> None:
    """Each wallet in one job, each partition in one job, and no job holding more than an
    even share plus one partition (the bound of dealing the heaviest first to the least
    loaded job): dealt out in turn, most of the work could land on one job."""
    wallets = sorted(sizes)
    plan = shards(wallets, jobs, partitions=8, sizes=sizes)
    placed = {w: k for k, shard in enumerate(plan.shards) for _, w in shard}
    assert sorted(placed) == wallets == sorted(w for shard in plan.shards for _, w in shard)
    assert all(plan.job_of(w) == k for w, k in placed.items())  # a wallet pays in its job
    weights: dict[int, int] = defaultdict(int)
    for w in wallets:
        weights[partition_of(w.encode(), 8)] += max(1, sizes[w])
    assert plan.jobs == min(jobs, len(weights))
    loads = _loads(plan, sizes)
    assert max(loads) <= sum(loads) / plan.jobs + max(weights.values())
    if plan.jobs == len(weights):  # a partition each
        assert max(loads) == max(weights.values())


def _failing(url: str, how: str) -> EventStore:
    if how == "raise":
        raise StoreError(f"cannot open the event store {url}: no such host")
    os._exit(3)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("raise", r"replay job [12] of 2 failed: StoreError: cannot open the event store"),
        ("exit", r"replay job [12] of 2 stopped before it finished \(exit code 3\)"),
    ],
)
def test_a_failed_job_fails_the_replay_and_nothing_is_appended(
    rated: Rated, tmp_path: Path, how: str, message: str
) -> None:
    url = _copy(rated, tmp_path / "events.db")
    store = open_store(url)
    try:
        position = store.position()
        with pytest.raises(ReplayJobError, match=message):
            replay(store, rated.new_catalog, jobs=2, opener=lambda: _failing(url, how))
        assert store.position() == position
    finally:
        store.close()


def test_one_progress_bar_counts_the_inputs_of_every_job(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _copy(rated, tmp_path / "events.db")
    store = open_store(url)
    try:
        total = store.stats().inputs
        replay(
            store,
            rated.new_catalog,
            dry_run=True,
            progress=True,
            jobs=2,
            opener=lambda: open_store(url),
        )
    finally:
        store.close()
    assert f"{total:,}/{total:,}".replace(",", "") in capsys.readouterr().err.replace(",", "")
