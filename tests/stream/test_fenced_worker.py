"""The worker's side of the fence, in process on the real broker: a worker whose wallet
partition is taken over by another producer drops the partition at its next commit,
counts it, leaves the batch's inputs uncommitted, and has written nothing of that batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.catalog import load_catalog
from engine.codec import decode_command
from engine.domain import Command
from engine.stream.agents import Topology, build
from engine.stream.fencing import PartitionWriter
from engine.stream.rater import BatchTally
from engine.stream.recovery import read_decisions
from engine.stream.settings import WorkerSettings

from .harness import CATALOG, Stack

PARTITION = 0


def _top_up(n: int) -> Command:
    return decode_command(
        b'{"type":"TopUp","command_id":"t-%d","wallet_id":"initech",'
        b'"at":"2026-09-01T00:00:00Z","amount":"1.00","currency":"EUR"}' % n
    )


@pytest.mark.chaos
def test_a_fenced_partition_is_dropped_counted_and_writes_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = Stack(kafka_bootstrap, tmp_path, raw_partitions=1, wallet_partitions=2)
    settings = WorkerSettings(
        catalog=CATALOG,
        bootstrap=kafka_bootstrap,
        app_id=stack.env["RATING_APP_ID"],
        data_dir=tmp_path / "data",
        tick_interval=0,
        snapshot_every=0,
        store="memory://",
    )
    _, topology = build(settings, load_catalog(CATALOG), stack.topics)
    asyncio.run(_scenario(topology, stack))


async def _scenario(topology: Topology, stack: Stack) -> None:
    events = stack.topics.wallet_events.name
    commands = stack.topics.wallet_commands.name
    tally = BatchTally()
    await topology.ownership.recover(PARTITION)  # fences any earlier owner, reads the (empty) log
    assert topology.processor.recovered(PARTITION)

    # A batch committed while the worker owns the partition.
    out = await topology.ownership.writer(PARTITION)
    assert out is not None
    topology.rater._decide(out, PARTITION, "initech", _top_up(0), (commands, PARTITION, 0), tally)
    assert await topology.ownership.commit({PARTITION: out}) == {PARTITION}
    assert topology.processor.partitions[PARTITION].events_offset >= 0

    # The next batch is open when another worker takes the partition over.
    out = await topology.ownership.writer(PARTITION)
    assert out is not None
    topology.rater._decide(out, PARTITION, "initech", _top_up(1), (commands, PARTITION, 1), tally)
    PartitionWriter(stack.bootstrap, topology.settings.app_id, PARTITION).init()
    assert await topology.ownership.commit({PARTITION: out}) == set()  # its inputs stay uncommitted

    assert not topology.processor.recovered(PARTITION)  # its state is dropped
    assert PARTITION not in topology.ownership.writers
    assert topology.metrics.registry.get_sample_value("rating_partitions_fenced_total") == 1
    assert await topology.ownership.writer(PARTITION) is None  # not its partition any more
    origins = [d.origin_offset for _, d in read_decisions(stack.bootstrap, events, PARTITION)]
    assert origins == [0]  # the fenced batch's decision never landed
