"""One test per override of Faust's private API (faust_compat.py): each fails when the
installed Faust no longer takes the override the way the worker relies on."""

from __future__ import annotations

import asyncio
import inspect
import logging
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Fetcher
from faust.types import TP, Message

from engine.stream import aiokafka_compat, faust_compat
from engine.stream.aiokafka_compat import FollowingRecords
from engine.stream.faust_compat import (
    Bundle,
    CommittedConsumerThread,
    ExactConsumer,
    ExactTransport,
    QuietWorker,
    RatingApp,
    RawSchema,
    consumer_report,
)
from engine.stream.positions import Positions
from engine.stream.versions import UnsupportedVersion, check_version

from .harness import REPO, in_loop, positions_over


def _message(offset: int) -> Message:
    return Message("t", 0, offset, 1.0, 0, [], b"key", f"value-{offset}".encode(), None)


FAUST = ("faust-streaming", faust_compat.SUPPORTED, faust_compat.__name__)
AIOKAFKA = ("aiokafka", aiokafka_compat.AIOKAFKA, aiokafka_compat.__name__)


@pytest.mark.parametrize("installed", ["0.15.3", "0.15.3+local"])
def test_the_supported_versions_pass(installed: str) -> None:
    check_version(installed, *FAUST)


@pytest.mark.parametrize("installed", ["0.13.2", "0.15.2", "0.15.4", "0.16.0", "1.0.0"])
def test_any_other_version_is_refused_with_what_to_install(installed: str) -> None:
    with pytest.raises(
        UnsupportedVersion,
        match=r"engine/stream/faust_compat\.py .* faust-streaming>=0\.15\.3,<0\.15\.4",
    ):
        check_version(installed, *FAUST)


@pytest.mark.parametrize("installed", ["0.13.0", "0.14.1", "0.15.0"])
def test_any_other_aiokafka_is_refused_with_what_to_install(installed: str) -> None:
    with pytest.raises(
        UnsupportedVersion,
        match=r"engine/stream/aiokafka_compat\.py .* aiokafka>=0\.14\.0,<0\.14\.1",
    ):
        check_version(installed, *AIOKAFKA)
    check_version("0.14.0", *AIOKAFKA)


@pytest.mark.parametrize(("package", "supported", "_"), [FAUST, AIOKAFKA])
def test_pyprojects_pin_is_the_version_the_overrides_were_read_against(
    package: str, supported: tuple[tuple[int, ...], tuple[int, ...]], _: str
) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    [spec] = [d for d in project["dependencies"] if d.split("[")[0].split("=")[0] == package]
    low = ".".join(map(str, supported[0]))
    assert spec.endswith(f"=={low}"), spec


def test_the_installed_versions_are_the_ones_checked() -> None:
    # Each module checked its library on import; this pins that the checks are there at all.
    faust_source = inspect.getsource(faust_compat)
    aiokafka_source = inspect.getsource(aiokafka_compat)
    assert 'check_version(version("faust-streaming"), "faust-streaming", SUPPORTED' in faust_source
    assert 'check_version(version("aiokafka"), "aiokafka", AIOKAFKA' in aiokafka_source


def test_raw_schema_hands_the_record_bytes_to_the_event(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        message = _message(5)
        event = await RawSchema().compile(app)(message)
        assert (event.key, event.value, event.message) == (b"key", b"value-5", message)

    in_loop(scenario, tmp_path)


def test_the_app_builds_the_exact_transport_and_consumer(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        assert isinstance(app.transport, ExactTransport)
        assert isinstance(app.consumer, ExactConsumer)

    in_loop(scenario, tmp_path)


def test_the_consumer_reads_read_committed(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        thread = app.consumer._thread
        assert isinstance(thread, CommittedConsumerThread)
        inner = thread._create_worker_consumer(app.transport)
        try:
            assert inner._isolation_level == "read_committed"
        finally:
            await inner.stop()

    in_loop(scenario, tmp_path)


def test_the_offsets_committed_are_the_engines_positions(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        positions = app.positions = Positions(_never_start, _never_fetch)
        positions.durable[("t", 0)] = 42
        consumer = app.consumer
        consumer._acked[TP("t", 1)].extend([7, 8])  # acks Faust would commit from
        # What Faust's commit path asks before each commit:
        offsets = consumer._filter_committable_offsets([TP("t", 0), TP("t", 1)])
        assert offsets == {TP("t", 0): 42}
        assert not consumer._acked[TP("t", 1)]  # and the acks do not pile up

    in_loop(scenario, tmp_path)


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    """A record as aiokafka fetches it (timestamp in milliseconds)."""
    value = f"{topic}-{offset}".encode()
    return ConsumerRecord(topic, partition, offset, 1_500, 0, None, value, None, 0, 9, ())


async def _drain(
    consumer: Any,
    fetches: list[dict[TP, list[Any]]],
    on_fetch: Callable[[int], None] = lambda i: None,
    on_hand: Callable[[Message], None] = lambda m: None,
) -> list[Message]:
    """What ``_drain_messages`` hands the streams from ``fetches`` (then the consumer stops);
    ``on_fetch(i)`` runs as the i-th fetch returns, ``on_hand`` after each hand-off."""
    handed: list[Message] = []
    count = len(fetches)

    async def fetch(timeout: float) -> tuple[dict[TP, list[Any]], None]:
        if not fetches:
            consumer._stopped.set()  # all fetched: the consumer stops
            return {}, None
        on_fetch(count - len(fetches))
        return fetches.pop(0), None

    async def callback(message: Message) -> None:
        handed.append(message)
        on_hand(message)

    consumer._wait_next_records, consumer.callback = fetch, callback
    await consumer._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    return handed


def test_fetched_records_are_handed_over_in_order_unless_the_flow_is_suspended(
    tmp_path: Path,
) -> None:
    # Faust's fetcher runs the consumer's _drain_messages: the override is what it runs.
    assert "consumer._drain_messages(self)" in inspect.getsource(Fetcher)
    tp = TP("t", 0)

    async def scenario(app: RatingApp) -> None:
        consumer: Any = app.consumer

        def on_fetch(i: int) -> None:
            if i == 1:
                consumer.suspend_flow.set()  # a rebalance begins: drop what is fetched
            elif i == 2:
                consumer.suspend_flow.clear()

        fetches = [{tp: [_record("t", 0, 0), _record("t", 0, 1)]}, {tp: [_record("t", 0, 2)]}]
        fetches.append({tp: [_record("t", 0, 3)]})
        handed = await _drain(consumer, fetches, on_fetch)
        assert [(m.offset, m.value, m.timestamp) for m in handed] == [
            (0, b"t-0", 1.5),
            (1, b"t-1", 1.5),
            (3, b"t-3", 1.5),
        ]

    in_loop(scenario, tmp_path)


def test_a_bundled_topics_records_are_handed_over_in_bundles_per_partition(
    tmp_path: Path,
) -> None:
    """Faust's work per message is done once per bundle: a bundle holds one partition's
    consecutive records of one fetch, at most the topic's bundle size, and carries the
    last one's offset and the fetch's generation; other topics go record by record."""

    async def scenario(app: RatingApp) -> None:
        app.bundled = {"raw": 2}
        consumer: Any = app.consumer
        raw0, raw1, other = TP("raw", 0), TP("raw", 1), TP("t", 0)
        fetch = {
            raw0: [_record("raw", 0, o) for o in (10, 11, 12)],
            other: [_record("t", 0, 0)],
            raw1: [_record("raw", 1, o) for o in (4, 5)],
        }
        handed = await _drain(consumer, [fetch])
        seen = [
            (m.topic, m.partition, [r.offset for r in getattr(m, "records", [m])]) for m in handed
        ]
        assert seen == [("raw", 0, [10, 11]), ("raw", 0, [12]), ("raw", 1, [4, 5]), ("t", 0, [0])]
        bundles = [m for m in handed if isinstance(m, Bundle)]
        assert [b.offset for b in bundles] == [11, 12, 5]
        assert {b.generation_id for b in bundles} == {app.consumer_generation_id}
        # Positions reads the records of the bundle's event, not the bundle's own fields.
        positions = Positions(_start_at(10, 4), _never_fetch)
        batch = await positions.inputs([SimpleNamespace(message=b) for b in bundles])
        assert [(r.partition, r.offset, r.value, r.timestamp) for r in batch.inputs] == [
            (0, 10, b"raw-10", 1.5),
            (0, 11, b"raw-11", 1.5),
            (0, 12, b"raw-12", 1.5),
            (1, 4, b"raw-4", 1.5),
            (1, 5, b"raw-5", 1.5),
        ]

    in_loop(scenario, tmp_path)


def test_a_record_is_handed_over_with_what_it_follows(tmp_path: Path) -> None:
    """A record of a topic not bundled reaches the streams as a message that carries the
    record's ``follows`` (FollowingRecords), which `Positions` reads: a gap the fetch
    passed over is not read back, one it did not is."""

    async def scenario(app: RatingApp) -> None:
        consumer: Any = app.consumer
        records = [_record("t", 0, o) for o in (4, 6, 9)]
        for record, follows in zip(records, (4, 5, 8), strict=True):
            record.follows = follows  # 5 passed over by the fetch; 7 was not
        handed = await _drain(consumer, [{TP("t", 0): records}])
        assert [(m.offset, m.follows, m.timestamp) for m in handed] == [
            (4, 4, 1.5),
            (6, 5, 1.5),
            (9, 8, 1.5),
        ]
        assert {m.generation_id for m in handed} == {app.consumer_generation_id}
        positions, read = positions_over(4, log=[])
        batch = await positions.inputs([SimpleNamespace(message=m) for m in handed])
        assert [r.offset for r in batch.inputs] == [4, 6, 9]
        assert read == [(7, 9)] and positions.passed_over == 1

    in_loop(scenario, tmp_path)


def test_a_revoked_partition_forgets_the_tail_its_last_fetch_passed_over(tmp_path: Path) -> None:
    """A revoked partition's next fetch follows from its own start, not from a tail seen
    before (a topic made again under the same name starts a new log)."""

    async def scenario(app: RatingApp) -> None:
        consumer: Any = app.consumer
        tails = FollowingRecords._tails
        kept, revoked = TopicPartition("kept", 0), TopicPartition("gone", 0)
        tails.update({kept: (3, 5), revoked: (7, 9)})
        try:
            await consumer.on_partitions_revoked({TP("gone", 0)})
            assert (tails.get(kept), tails.get(revoked)) == ((3, 5), None)
        finally:
            tails.pop(kept, None)

    in_loop(scenario, tmp_path)


def test_records_fetched_before_a_rebalance_are_not_handed_over(tmp_path: Path) -> None:
    """A generation that changed while a fetch was handed over ends the hand-off, as in
    Faust's ``getmany``: those records come again from the committed offsets."""

    async def scenario(app: RatingApp) -> None:
        app.bundled = {"raw": 1}
        consumer: Any = app.consumer
        raw = TP("raw", 0)
        fetch = {raw: [_record("raw", 0, o) for o in (0, 1, 2)]}

        def rebalance(message: Message) -> None:
            app.consumer_generation_id += 1

        handed = await _drain(consumer, [fetch], on_hand=rebalance)
        assert [m.offset for m in handed] == [0]

    in_loop(scenario, tmp_path)


def test_a_fetch_that_ends_with_the_flow_stopped_seeks_back_and_hands_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As Faust's ``getmany``: the flow stopped during the fetch (a rebalance), so its
    records are dropped and the consumer seeks back to the committed offsets; a seek that
    fails is logged and the next fetch goes on."""

    async def scenario(app: RatingApp) -> None:
        app.bundled = {"raw": 10}
        consumer: Any = app.consumer
        seeks: list[str] = []

        async def perform_seek() -> None:
            seeks.append("seek")
            if len(seeks) == 1:
                raise RuntimeError("broker away")

        consumer.perform_seek = perform_seek
        consumer.flow_active = False
        fetch = {TP("raw", 0): [_record("raw", 0, 0)]}
        handed = await _drain(consumer, [fetch, {}])
        assert handed == [] and seeks == ["seek", "seek"]

    with caplog.at_level(logging.WARNING, logger="rating-engine"):
        in_loop(scenario, tmp_path)
    assert "seeking back to the committed offsets failed: RuntimeError('broker away')" in (
        caplog.text
    )


def test_the_monitor_sensor_is_not_installed(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        list(app.on_init_dependencies())
        assert app.monitor not in app.sensors

    in_loop(scenario, tmp_path)


def test_the_worker_leaves_the_root_logger_at_its_level(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        worker = QuietWorker(app, loglevel="WARNING", quiet=True)
        logger = logging.Logger("root-under-test", logging.DEBUG)
        logger.addHandler(logging.NullHandler())
        worker.on_setup_root_logger(logger, logging.WARNING)
        assert logger.level == logging.WARNING
        assert all(h.level == logging.WARNING for h in logger.handlers)

    in_loop(scenario, tmp_path)


def test_the_report_reads_the_consumers_partitions_and_positions(tmp_path: Path) -> None:
    async def scenario(app: RatingApp) -> None:
        consumer: Any = app.consumer
        assert consumer_report(consumer) == ["paused=-", "active=-", "unacked messages=0"]
        inner = consumer._thread._create_worker_consumer(app.transport)
        try:
            inner._subscription.assign_from_user({TopicPartition("t", 1)})
            consumer._thread._consumer = inner
            assert consumer_report(consumer)[3:] == [
                "t/1: position=None paused=False highwater=None"
            ]
        finally:
            await inner.stop()

    in_loop(scenario, tmp_path)


async def _never_start(topic: str, partition: int) -> int:
    raise AssertionError("not started")


async def _never_fetch(topic: str, partition: int, start: int, end: int) -> list[Any]:
    raise AssertionError("not fetched")


def _start_at(*starts: int) -> Any:
    """A partition's start: ``starts[partition]``."""

    async def start(topic: str, partition: int) -> int:
        return starts[partition]

    return start
