"""`benchmarks/stream.py`: its latency runs say where in the run their tail is, its default
run has the wallets over all partitions, as the aim's run has them, and it splits the
worker's CPU by thread."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from support.benchmarks import benchmark
from support.catalogs import spread_catalog

from engine.catalog import load_catalog

stream = benchmark("stream")


def test_the_slowest_seconds_are_counted_from_the_first_cdr_sent() -> None:
    start = 1_700_000_000_000
    joined = [
        (start + 1_500, start + 1_520),  # second 1: 20 ms
        (start, start + 90),  # second 0: 90 ms, the run's first CDR
        (start + 2_100, start + 2_900),  # second 2: 800 ms
        (start + 2_999, start + 3_100),  # second 2: 101 ms
        (start + 1_100, start + 1_130),  # second 1: 30 ms
    ]
    assert stream.slowest_seconds(joined) == [[2, 800, 2], [0, 90, 1], [1, 30, 2]]
    assert stream.slowest_seconds(joined, top=1) == [[2, 800, 2]]
    assert stream.slowest_seconds([]) == []


def test_the_default_run_spreads_the_wallets_over_every_partition(tmp_path: Path) -> None:
    """The example's own four wallets hash to three of the eight wallet partitions; the
    default copies of each spread them over all eight, which the report requires to judge."""
    example = load_catalog(stream.CATALOG)
    assert stream.wallet_partitions(example, 8) == 3
    spread = load_catalog(spread_catalog(tmp_path / "catalog.yaml", stream.SPREAD))
    assert len(spread.wallets) == 4 * stream.SPREAD
    assert stream.wallet_partitions(spread, 8) == 8


def test_a_workers_threads_are_grouped_by_what_runs_in_them() -> None:
    assert stream.thread_group(100, 100, "python") == "event loop"
    assert stream.thread_group(100, 101, "rdk:broker1") == "librdkafka"
    assert stream.thread_group(100, 102, "rdk:main") == "librdkafka"
    assert stream.thread_group(100, 103, "python") == "other threads"


def _burn(seconds: float) -> None:
    """Spin until this thread has used ``seconds`` of CPU."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _burn_then_wait(seconds: float, burnt: threading.Event, release: threading.Event) -> None:
    _burn(seconds)
    burnt.set()
    release.wait(30)


def test_the_cpu_split_counts_each_thread_in_its_group_between_two_readings() -> None:
    pid = os.getpid()
    before = stream.thread_cpu(pid)
    assert before[(pid, pid)][0] == "event loop"
    ended = threading.Thread(target=_burn, args=(0.3,))
    ended.start()
    ended.join()  # ended before the second reading: left out
    burnt, release = threading.Event(), threading.Event()
    running = threading.Thread(target=_burn_then_wait, args=(0.3, burnt, release))
    running.start()
    assert burnt.wait(30)
    _burn(0.2)
    after = stream.thread_cpu(pid)
    release.set()
    running.join()
    assert (pid, ended.native_id) not in after
    # Only this test's threads: clients an earlier test left in the session may still tick.
    ours = {key: found for key, found in after.items() if key[1] in (pid, running.native_id)}
    split = stream.thread_split(before, ours, 1_000)
    assert split is not None and set(split) == set(stream.THREAD_GROUPS)
    # Over 1,000 "CDRs", 1 ms of CPU is 1 µs per CDR; /proc counts in ticks of 10 ms.
    assert 150 <= split["event loop"] <= 1_000
    used = after[(pid, pid)][1] - before[(pid, pid)][1]  # between the readings, not since start
    assert split["event loop"] == pytest.approx(used * 1e3, abs=0.1)
    assert 250 <= split["other threads"] <= 400
    assert split["librdkafka"] == 0
    assert stream.thread_split(before, {}, 1_000) is None
