"""The Faust application and its settings: nothing else lives here, but for the places where
Faust's per-message path is made cheaper (``FastConsumer``, ``RawSchema``, no ``Monitor``
sensor): at thousands of records a second, Faust's own work per record is most of the
worker's CPU."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator, Iterable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import AppT, Message
from mode.services import WaitResults

from .settings import WorkerSettings


class _Resume:
    """Awaits the rest of a coroutine that already ran up to its first suspension (it
    yielded ``pending``), so a task can take it over from there."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and the like go to the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _resume(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    return await _Resume(coro, pending)


class FastConsumer(faust_aiokafka.Consumer):
    """Faust's consumer hands every message to the streams through ``wait_first(callback,
    suspend_flow.wait())``, which makes four tasks per message: a fifth of the worker's CPU.
    Here the callback first runs inline; in the usual case (the stream's buffer has room)
    it completes at once and no task is made. Only when it must wait does it continue
    under ``wait_first``, exactly as Faust runs it, so a rebalance (``suspend_flow``) still
    interrupts it."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if (
            len(coros) != 2
            or timeout is not None
            or not asyncio.iscoroutine(coros[0])
            or self.suspend_flow.is_set()
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            return await super().wait_first(*coros, timeout=timeout)
        work, other = coros
        try:
            pending = work.send(None)
        except StopIteration as stop:
            if asyncio.iscoroutine(other):
                other.close()
            return WaitResults([work], [stop.value], False)
        return await super().wait_first(_resume(work, pending), other)


class FastTransport(faust_aiokafka.Transport):
    Consumer = FastConsumer


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


class RatingApp(faust.App):
    """A Faust app whose consumer is `FastConsumer`, without the ``Monitor`` sensor."""

    def _new_transport(self) -> Any:
        return FastTransport(self.conf.broker_consumer, self)

    def on_init_dependencies(self) -> Iterable[Any]:
        services = super().on_init_dependencies()
        # The Monitor keeps statistics for Faust's web views (disabled here) and is called
        # several times per record; the worker's metrics are its own (metrics.py).
        self.sensors.remove(self.monitor)
        return services


def create_app(settings: WorkerSettings) -> faust.App:
    return RatingApp(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
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
        broker_session_timeout=10.0,
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
