"""`benchmarks/instructions.py`: the core and the floor counted in instructions by
cachegrind, each count a run with the loop less a run without."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.benchmarks import BENCHMARKS, benchmark

instructions = benchmark("instructions")

SCRIPT = (sys.executable, str(BENCHMARKS / "instructions.py"))
CACHEGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=yes", "--cachegrind-out-file=/dev/null")


def test_the_counts_are_read_from_cachegrinds_own_summary() -> None:
    run = subprocess.run(
        [*CACHEGRIND, "/bin/true"],
        capture_output=True,
        text=True,
        check=True,
    )
    counts = instructions.parse(run.stderr)
    assert set(counts) == {"instructions", "i1_misses", "d1_misses"}
    # /bin/true runs its loader and libc start-up: tens of thousands of instructions, some
    # of which miss the caches, and no more than it runs.
    assert 10_000 < counts["instructions"] < 10_000_000
    assert 0 < counts["i1_misses"] < counts["instructions"]
    assert 0 < counts["d1_misses"] < counts["instructions"]


def test_a_summary_without_a_count_is_refused_by_name() -> None:
    summary = "==1== I   refs:      3,612,692\n==1== I1  misses:     74,836\n"
    with pytest.raises(ValueError, match="'D1  misses'"):
        instructions.parse(summary)


@pytest.mark.parametrize("loop", instructions.LOOPS)
def test_each_loop_runs_as_the_child_valgrind_counts(loop: str) -> None:
    for run in ("1", "0"):
        done = subprocess.run(
            [*SCRIPT, "--child", loop, "--cdrs", "50"],
            env={**os.environ, instructions.LOOP_VARIABLE: run},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def test_a_count_of_no_cdrs_is_a_usage_error() -> None:
    done = subprocess.run(
        [*SCRIPT, "--cdrs", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--cdrs must be positive" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_two_runs_of_a_pair_differ_only_in_whether_the_loop_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("RATING_STORE", "memory://")  # the caller's: not passed on
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    with_loop, set_up = instructions.child_env(True), instructions.child_env(False)
    assert {k for k in with_loop if with_loop[k] != set_up[k]} == {"BENCH_LOOP"}
    assert (with_loop["BENCH_LOOP"], set_up["BENCH_LOOP"]) == ("1", "0")
    # The same hash seed, and no .pyc written by the first run for the second to read.
    assert with_loop["PYTHONHASHSEED"] == "0"
    assert with_loop["PYTHONDONTWRITEBYTECODE"] == "1"
    assert with_loop["PYTHONPATH"] == "/somewhere"
    assert "RATING_STORE" not in with_loop
