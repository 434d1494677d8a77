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
