"""The Faust application and its settings: nothing else lives here, but for the places where
Faust's per-record path is made cheaper (``RawSchema``, no ``Monitor`` sensor: at thousands
of records a second, Faust's own work per record is most of the worker's CPU) and the one
where the offsets it commits come from the engine (``ExactConsumer``, see positions.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as kafka_driver
from faust.types import TP, AppT, Message

from .kafka_security import KafkaSecurity
from .positions import Positions
from .settings import WorkerSettings


class RawSchema(faust.Schema):
    """Records as bytes: the event gets the record's key and value as they are, without
    the serializer registry's lookups per record (the engine's codec reads the bytes)."""

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: AppT, **kwargs: Any) -> Any:
        create_event = app.create_event

        async def decode(message: Message, *, propagate: bool = False) -> Any:
            return create_event(message.key, message.value, message.headers, message)

        return decode


class CommittedConsumerThread(kafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer, reading ``read_committed``: a record a fenced worker sent
    in a transaction (a split-billing charge on ``wallet.commands``) is aborted and must not
    be decided (fencing.py). Transaction markers leave gaps in the offsets, which
    `Positions` reads back and finds empty."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = "read_committed"
        return consumer


class ExactConsumer(kafka_driver.Consumer):
    """Faust's consumer, committing for each partition the offset the engine's `Positions`
    says is durable, instead of one worked out from the events acknowledged."""

    def _new_consumer_thread(self) -> kafka_driver.AIOKafkaConsumerThread:
        return CommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        # Acknowledgements still drive Faust's waiting for streams to finish at a
        # rebalance; for the offset they are not used, so they need not pile up.
        self._acked[tp].clear()
        self._acked_index[tp].clear()
        positions: Positions | None = getattr(self.app, "positions", None)
        return None if positions is None else positions.commit_offset(tp.topic, tp.partition)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Hand each fetched record to the streams, one after the other.

        Faust's own loop awaits each hand-off through ``wait_first`` (four asyncio tasks per
        record, the largest part of Faust's cost per record), so that a suspended flow can
        interrupt it, and keeps the offsets it handed off to spot gaps. This loop needs
        neither: `Positions` recognises records delivered again and reads back any never
        delivered. A hand-off still waiting on a stream's full queue when a rebalance
        clears that queue is dropped: its record comes again from the committed offset, or
        is read back when the next one arrives.
        """
        callback = self.callback
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        suspended = self.suspend_flow.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                handed = 0
                async for _tp, message in self.getmany(timeout=1.0):
                    if suspended():
                        continue
                    try:
                        await callback(message)
                    except asyncio.CancelledError:
                        task = asyncio.current_task()
                        if task is not None and task.cancelling():
                            raise  # the fetcher itself is being stopped
                    handed += 1
                    if handed % 100 == 0:
                        await asyncio.sleep(0)  # let the streams run during a large fetch
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise


class ExactTransport(kafka_driver.Transport):
    Consumer = ExactConsumer


class RatingApp(faust.App):
    """A Faust app without the ``Monitor`` sensor, whose consumer commits the engine's
    positions."""

    positions: Positions | None = None

    def _new_transport(self) -> Any:
        return ExactTransport(self.conf.broker_consumer, self)

    def on_init_dependencies(self) -> Iterable[Any]:
        services = super().on_init_dependencies()
        # The Monitor keeps statistics for Faust's web views (disabled here) and is called
        # several times per record; the worker's metrics are its own (metrics.py).
        self.sensors.remove(self.monitor)
        return services


def create_app(settings: WorkerSettings) -> RatingApp:
    return RatingApp(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        # TLS and SASL/SCRAM from KAFKA_SECURITY_PROTOCOL and friends (kafka_security.py).
        broker_credentials=KafkaSecurity.from_env().faust_credentials(),
        datadir=str(settings.data_dir),
        # The snapshot table lives in RocksDB under datadir: a restarted worker reads it from
        # disk (and the changelog tail) instead of replaying wallet.events from the start.
        store=settings.store,
        # Topics come from topics.yaml through `rating-engine topics apply`, never implicitly.
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        # Records are bytes the engine's codec reads; Faust never (de)serializes them.
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        # Join a group in seconds rather than the defaults' tens of seconds.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger_ms=5,
        producer_partitioner=None,
        stream_buffer_maxsize=20_000,
        # Smaller fetches per partition interleave partitions finely, so a backlog is rated
        # roughly in time order across partitions instead of one partition at a time.
        consumer_max_fetch_size=256 * 1024,
    )
