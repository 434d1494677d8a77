"""The SIGUSR1 report: the worker's state and every task's stack, readable on any worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from engine.stream.diagnostics import describe
from engine.stream.faust_compat import RatingApp

from .harness import in_loop


def test_the_report_names_the_state_partitions_recoveries_and_tasks(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        consumer: Any = app.consumer
        # The consumer as it stands once started with one partition assigned.
        inner = consumer._thread._create_worker_consumer(app.transport)
        inner._subscription.assign_from_user({TopicPartition("t", 1)})
        consumer._thread._consumer = inner
        loop = asyncio.get_running_loop()
        done, pending = loop.create_future(), loop.create_future()
        done.set_result(None)
        try:
            report = describe(app, {1: done, 2: pending})
        finally:
            pending.cancel()
            await inner.stop()
        assert report.startswith("worker state\n")
        assert "rebalancing=False" in report
        assert "assignment=t/1" in report and "paused=-" in report
        assert "recoveries={1: 'done', 2: 'running'}" in report
        assert "t/1: position=None paused=False highwater=None" in report
        assert "\ntask " in report  # this test's own task, with its stack

    in_loop(scenario, tmp_path)
