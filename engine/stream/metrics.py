"""Prometheus metrics of a worker and a sink, served on ``/metrics`` with the health probes
(``health.py``).

Every name here is part of the operations contract (dashboards and alerts use them), so
they are declared once, in this module, with their help text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from .buckets import BatchHistogram
from .garbage import GcPauses
from .health import Health, HealthServer, serve
from .outage import RetryMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
AGE_BUCKETS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 90 * 86400)


class Metrics:
    """The worker's collectors, in a registry of their own (no process-global state),
    declared by what they watch: inputs, decisions, partitions."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._inputs(r)
        self._decisions(r)
        self._partitions(r)
        self.retry = RetryMetrics(r)
        self.gc = GcPauses()
        """``rating_gc_pause_seconds{generation}``, ``rating_gc_pause_max_seconds`` and
        ``rating_gc_frozen_objects``: what the garbage collector costs (garbage.py)."""
        r.register(self.gc)

    def _inputs(self, r: CollectorRegistry) -> None:
        self.received = Counter(
            "rating_cdrs_received", "CDR records read from cdr.raw.", registry=r
        )
        self.commands = Counter(
            "rating_commands_received", "Commands read from wallet.commands.", registry=r
        )
        self.skipped = Counter(
            "rating_redeliveries_skipped",
            "Inputs delivered again after a restart and recognised as already decided.",
            registry=r,
        )
        self.read_back = Counter(
            "rating_inputs_read_back",
            "Input records the consumer skipped at a rebalance, read back from Kafka and "
            "decided in their place.",
            registry=r,
        )
        self.passed_over = Counter(
            "rating_inputs_passed_over",
            "Input offsets the consumer's own fetches passed over because the log holds no "
            "committed record there (transaction markers, aborted records): not read back.",
            registry=r,
        )
        self.held = Gauge(
            "rating_cdrs_held",
            "CDRs enrich holds back because no SIM-route covers them yet (holding.py).",
            registry=r,
        )
        self.hold_expired = Counter(
            "rating_cdrs_hold_expired",
            "Held CDRs whose hold ran out before a route covered them (then routed by the "
            "fallback rule or rejected as unknown_sim).",
            registry=r,
        )
        self.lag = Gauge(
            "rating_consumer_lag",
            "Records behind the end of an input partition.",
            ["topic", "partition"],
            registry=r,
        )

    def _decisions(self, r: CollectorRegistry) -> None:
        self.rated = Counter("rating_cdrs_rated", "CDRs priced (UsageRated events).", registry=r)
        self.rejected = Counter(
            "rating_cdrs_rejected",
            "CDRs that could not be rated, by reason.",
            ["reason"],
            registry=r,
        )
        self.events = Counter(
            "rating_events", "Events emitted to wallet.events, by type.", ["type"], registry=r
        )
        self.decisions = Counter(
            "rating_decisions", "Decision records written to wallet.events.", registry=r
        )
        self.internal_errors = Counter(
            "rating_internal_errors",
            "Inputs whose decoding or decision failed unexpectedly, rejected as internal_error "
            "(the partition goes on), by stage.",
            ["stage"],
            registry=r,
        )
        # Observed once per batch, a value per CDR (buckets.py).
        self.ingest_latency = BatchHistogram(
            "rating_ingest_latency_seconds",
            "From a CDR's arrival on cdr.raw to its decision being acknowledged by Kafka.",
            LATENCY_BUCKETS,
        )
        self.cdr_age = BatchHistogram(
            "rating_cdr_age_seconds",
            "From a CDR's own start time to its decision being acknowledged by Kafka.",
            AGE_BUCKETS,
        )
        r.register(self.ingest_latency)
        r.register(self.cdr_age)
        self.suspended = Gauge(
            "rating_wallets_suspended",
            "Wallets of this worker's partitions now suspended.",
            registry=r,
        )
        self.catalogs_built = Gauge(
            "rating_catalogs_built",
            "Catalog revisions whose catalog this worker holds built: the newest and those a "
            "wallet of its partitions is on.",
            registry=r,
        )

    def _partitions(self, r: CollectorRegistry) -> None:
        self.partitions = Gauge(
            "rating_partitions_owned",
            "Wallet partitions this worker owns and has recovered.",
            registry=r,
        )
        self.recovering = Gauge(
            "rating_partitions_recovering",
            "Wallet partitions being rebuilt from wallet.events.",
            registry=r,
        )
        self.recovered_decisions = Counter(
            "rating_recovery_decisions",
            "Decisions read back from wallet.events while recovering partitions.",
            registry=r,
        )
        self.fenced = Counter(
            "rating_partitions_fenced",
            "Wallet partitions dropped because another worker's producer fenced this one's "
            "(the partition changed owner while this worker was paused or cut off).",
            registry=r,
        )
        self.snapshots = Counter(
            "rating_snapshots",
            "Partition snapshots written to the snapshot topic (in the partition's transaction).",
            registry=r,
        )
        self.snapshots_skipped = Counter(
            "rating_snapshots_skipped",
            "Partition snapshots not written because they exceeded RATING_SNAPSHOT_MAX_BYTES.",
            registry=r,
        )
        self.snapshot_mismatch = Counter(
            "rating_snapshot_mismatch",
            "Snapshots not trusted because the decision they name is not at their offset of "
            "wallet.events; the partition was rebuilt from the whole log instead.",
            registry=r,
        )

    def serve(self, port: int, health: Health | None = None) -> HealthServer:
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``port`` (0: any free port);
        the process reports to ``health`` (``beat()``, ``ready(reason)``) from its loop."""
        return serve(port, self.registry, health or Health())


class SinkMetrics:
    """The sink's collectors: wallet.events into the event store, the store into ClickHouse."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.records = Counter(
            "rating_sink_records", "Decision records read from wallet.events.", registry=r
        )
        self.stored = Counter(
            "rating_sink_events_stored", "Events appended to the event store.", registry=r
        )
        self.duplicates = Counter(
            "rating_sink_events_duplicate",
            "Events delivered again and found already stored (nothing appended).",
            registry=r,
        )
        self.lag = Gauge(
            "rating_sink_lag",
            "Records of wallet.events not yet stored, per partition.",
            ["partition"],
            registry=r,
        )
        self.committed_at = Gauge(
            "rating_sink_last_commit_timestamp_seconds",
            "Unix time of the sink's last offset commit (after a durable write).",
            registry=r,
        )
        self.store_position = Gauge(
            "rating_store_position", "Position of the last event in the event store.", registry=r
        )
        self.projected_position = Gauge(
            "rating_projection_position",
            "Position of the last stored event applied to the ClickHouse projections.",
            registry=r,
        )
        self.snapshots = Counter(
            "rating_sink_store_snapshots",
            "Wallet snapshots the sink wrote to the event store.",
            registry=r,
        )
        self.snapshot_failures = Counter(
            "rating_sink_store_snapshot_failures",
            "Rounds of store snapshots that failed (their wallets are taken in the next one).",
            registry=r,
        )
        self.snapshot_position = Gauge(
            "rating_sink_store_snapshot_position",
            "Store position of the sink's latest round of wallet snapshots.",
            registry=r,
        )
        self.retry = RetryMetrics(r)

    def serve(self, port: int, health: Health | None = None) -> HealthServer:
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``port`` (0: any free port);
        the process reports to ``health`` (``beat()``, ``ready(reason)``) from its loop."""
        return serve(port, self.registry, health or Health())
