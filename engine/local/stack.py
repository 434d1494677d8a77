"""One local stack: topics on a broker, worker and sink processes on them.

The tests, the benchmarks and ``rating-engine demo`` all build their system this way, so a
change to how a worker or a sink is started is made once. The broker comes from
`engine.local.broker`; this module takes its bootstrap servers.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from ..stream.admin import apply_topics
from ..stream.topics import REPO_TOPICS, Topics, load_topics
from .base import free_ports
from .process import Process, StackError

WALLET_KEYS = ("wallet_id", "partition")
"""The keys of the topics partitioned like the wallets (the snapshots included)."""


def worker_argv(catalog: Path, data_dir: Path, loglevel: str, *extra: str) -> list[str]:
    """``python -m engine.cli worker`` with no clock ticks (inputs carry their own time)."""
    return [
        sys.executable,
        "-m",
        "engine.cli",
        "worker",
        "--catalog",
        str(catalog),
        "--tick-interval",
        "0",
        "--data-dir",
        str(data_dir),
        "--loglevel",
        loglevel,
        *extra,
    ]


def sink_argv(store_url: str, *extra: str) -> list[str]:
    """``python -m engine.cli sink`` writing the event store at ``store_url``."""
    return [sys.executable, "-m", "engine.cli", "sink", "--store", store_url, *extra]


def private_topics(
    directory: Path,
    prefix: str,
    raw_partitions: int | None = None,
    wallet_partitions: int | None = None,
    wallet_keys: tuple[str, ...] = WALLET_KEYS,
) -> Path:
    """A copy of topics.yaml whose names start with ``prefix``, so that stacks sharing a
    broker never share a topic; written to ``directory/topics.yaml``."""
    data: dict[str, Any] = yaml.safe_load(REPO_TOPICS.read_text())
    for spec in data["topics"]:
        spec["name"] = prefix + spec["name"]
        if spec["role"] == "cdr_raw" and raw_partitions is not None:
            spec["partitions"] = raw_partitions
        elif spec["key"] in wallet_keys and wallet_partitions is not None:
            spec["partitions"] = wallet_partitions
    path = directory / "topics.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class LocalStack:
    """The topics of ``topics_file`` (default: the repository's, or ``RATING_TOPICS``)
    applied on the broker at ``bootstrap``, and the processes started on them.

    ``app_id``: the Faust application id of the workers; a fresh one gives a stack its own
    consumer groups and changelogs on a shared broker. `stop` (or leaving the ``with``
    block) stops every process it started, the last started first.
    """

    def __init__(
        self,
        bootstrap: str,
        directory: Path,
        *,
        topics_file: Path | None = None,
        app_id: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.directory = directory
        self.cwd = cwd
        self.topics: Topics = (
            load_topics() if topics_file is None else load_topics(topics_file, environ={})
        )
        self.env = {**os.environ, "KAFKA_BOOTSTRAP": bootstrap}
        if topics_file is not None:
            self.env["RATING_TOPICS"] = str(topics_file)
        if app_id is not None:
            self.env["RATING_APP_ID"] = app_id
        self.processes: list[Process] = []
        self.report = apply_topics(self.topics, bootstrap)
        if not self.report.ok:
            raise StackError(f"the topics could not be applied: {self.report}")

    @staticmethod
    def fresh_app_id(prefix: str = "app") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def start(
        self, name: str, argv: list[str], log: Path, port: int | None, new_session: bool
    ) -> Process:
        process = Process(
            name, argv, env=self.env, log=log, port=port, cwd=self.cwd, new_session=new_session
        )
        self.processes.append(process)
        return process

    def start_worker(
        self,
        catalog: Path,
        data_dir: Path,
        *extra: str,
        loglevel: str = "info",
        log: Path | None = None,
        metrics: bool = False,
        new_session: bool = False,
    ) -> Process:
        """A worker; with ``metrics``, on a free metrics port (its ``port``)."""
        port = free_ports(1)[0] if metrics else None
        more = ("--metrics-port", str(port)) if port is not None else ()
        argv = worker_argv(catalog, data_dir, loglevel, *extra, *more)
        log = log or self.directory / "worker.log"
        return self.start("worker", argv, log, port, new_session)

    def start_sink(
        self, store_url: str, *extra: str, log: Path | None = None, metrics: bool = False
    ) -> Process:
        """A sink writing ``store_url``; with ``metrics``, on a free metrics port."""
        port = free_ports(1)[0] if metrics else None
        more = ("--metrics-port", str(port)) if port is not None else ()
        argv = sink_argv(store_url, *extra, *more)
        return self.start("sink", argv, log or self.directory / "sink.log", port, False)

    def stop(self) -> None:
        processes, self.processes = self.processes, []
        for process in reversed(processes):
            process.stop()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
