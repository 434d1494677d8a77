"""``rating-engine sink``: the flags checked before any broker or store is reached. (The sink
running: tests/stream/test_sink.py.)"""

from __future__ import annotations

import pytest

from engine.cli import sink
from engine.cli.args import UsageError

from .parsing import parse, run


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(UsageError, match="--batch-size must be >= 1"):
        run(sink, "sink", "--store", "sqlite:///x.db", "--batch-size", "0")


def test_by_default_one_group_and_it_runs_until_stopped() -> None:
    args = parse(sink, "sink", "--store", "sqlite:///x.db")
    assert (args.group, args.idle_exit, args.batch_size) == ("rating-engine-sink", 0.0, None)
    assert args.clickhouse is None and args.metrics_port is None


def test_snapshot_every_comes_from_the_flag_then_the_environment_then_the_default() -> None:
    args = parse(sink, "sink", "--store", "sqlite:///x.db")
    assert args.snapshot_every is None
    env = {sink.SNAPSHOT_EVERY: "5000"}
    assert sink.snapshot_every(None, {}) == 100_000
    assert sink.snapshot_every(None, env) == 5000
    assert sink.snapshot_every(0, env) == 0  # the flag wins: no snapshots
    args = parse(sink, "sink", "--store", "sqlite:///x.db", "--snapshot-every", "250")
    assert sink.snapshot_every(args.snapshot_every, env) == 250


def test_a_negative_or_unreadable_snapshot_every_is_refused() -> None:
    with pytest.raises(UsageError, match="--snapshot-every must be >= 0"):
        run(sink, "sink", "--store", "sqlite:///x.db", "--snapshot-every", "-1")
    with pytest.raises(UsageError, match="RATING_SINK_SNAPSHOT_EVERY must be a whole number"):
        sink.snapshot_every(None, {sink.SNAPSHOT_EVERY: "lots"})
