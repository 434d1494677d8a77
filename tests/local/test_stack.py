"""How a local stack starts its processes and names its topics (no broker needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from engine.local import private_topics, sink_argv, worker_argv
from engine.stream.topics import load_topics


def test_private_topics_rename_every_topic_and_reshape_the_wallet_ones(tmp_path: Path) -> None:
    path = private_topics(tmp_path, "t1.", raw_partitions=1, wallet_partitions=2)
    topics = load_topics(path, environ={})
    assert all(spec.name.startswith("t1.") for spec in topics.all)
    assert topics.cdr_raw.partitions == 1
    assert topics.wallet_events.partitions == topics.wallet_snapshots.partitions == 2
    assert topics.cdr_rejected.partitions == 3  # keyed by ICCID: left as it was


def test_private_topics_may_leave_the_snapshots_alone(tmp_path: Path) -> None:
    path = private_topics(tmp_path, "t2.", None, 4, ("wallet_id",))
    data = {t["role"]: t for t in yaml.safe_load(path.read_text())["topics"]}
    assert data["wallet_events"]["partitions"] == 4
    assert data["wallet_snapshots"]["partitions"] == 8
    assert data["cdr_raw"]["partitions"] == 8


def test_worker_and_sink_command_lines() -> None:
    argv = worker_argv(Path("c.yaml"), Path("d"), "info", "--metrics-port", "1")
    assert argv[:4] == [sys.executable, "-m", "engine.cli", "worker"]
    assert argv[4:] == [
        *("--catalog", "c.yaml", "--tick-interval", "0", "--data-dir", "d"),
        *("--loglevel", "info", "--metrics-port", "1"),
    ]
    assert sink_argv("sqlite:///e.db", "--batch-size", "5")[3:] == [
        *("sink", "--store", "sqlite:///e.db", "--batch-size", "5"),
    ]
