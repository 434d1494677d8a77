"""The Faust application and its settings, and nothing else.

The app class and the schema come from faust_compat.py, which holds every override of
Faust's private API: the places where Faust's per-record path is made cheaper (at thousands
of records a second, Faust's own work per record is most of the worker's CPU) and where the
offsets it commits come from the engine (see positions.py)."""

from __future__ import annotations

from .faust_compat import BUNDLE_MAX, RatingApp, RawSchema
from .kafka_security import KafkaSecurity
from .settings import WorkerSettings

__all__ = ["BUNDLE_MAX", "RatingApp", "RawSchema", "create_app"]


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
