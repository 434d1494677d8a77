"""`benchmarks/stream.py`'s latency runs say where in the run their tail is."""

from __future__ import annotations

from support.benchmarks import benchmark

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
