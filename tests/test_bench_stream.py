"""`benchmarks/stream.py`: its latency runs say where in the run their tail is, and its
default run has the wallets over all partitions, as the aim's run has them."""

from __future__ import annotations

from pathlib import Path

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
