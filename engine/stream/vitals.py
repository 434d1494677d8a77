"""How a worker is doing, for operations: health probes, lag, counts and the SIGUSR1 report.

None of it decides anything: the agents and the partition ownership report here, and
this keeps the metrics (metrics.py), the readiness (health.py), the Kafka outage watch
(outage.py) and the on-demand report (diagnostics.py) up to date.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from faust.types import TP

from . import diagnostics
from .garbage import Garbage, parse_threshold
from .health import Health, worker_readiness
from .metrics import Metrics
from .outage import KafkaWatch, Outage, quiet_client_logs
from .processor import RatingProcessor


class Vitals:
    """One worker's metrics, health and Kafka watch, and what feeds them."""

    def __init__(
        self,
        app: Any,
        processor: RatingProcessor,
        probe: Callable[[], Any],
        gc_freeze: bool = False,
        gc_threshold: str = "",
    ) -> None:
        """``probe`` asks Kafka for metadata: what tells an outage's start and end;
        ``gc_freeze`` and ``gc_threshold``: the collector's settings (garbage.py), applied
        once the process calls ``garbage.start()``."""
        self.app = app
        self.processor = processor
        self.metrics = Metrics()
        self.garbage = Garbage(self.metrics.gc, gc_freeze, parse_threshold(gc_threshold))
        self.health = Health()
        outage = Outage("kafka", "Kafka", self.health, self.metrics.retry)
        self.kafka = KafkaWatch(outage, probe)
        quiet_client_logs(outage)

    def serve(self, port: int) -> None:
        self.metrics.serve(port, self.health)

    def count(self, counts: collections.Counter[str]) -> None:
        """Count what a batch decided (its counts by event type, skips and rejections)."""
        metrics = self.metrics
        for name, n in counts.items():
            if name == "skipped":
                metrics.skipped.inc(n)
            elif name == "decisions":
                metrics.decisions.inc(n)
            elif name.startswith("rejected:"):
                metrics.rejected.labels(name.partition(":")[2]).inc(n)
            else:
                metrics.events.labels(name).inc(n)
                if name == "UsageRated":
                    metrics.rated.inc(n)

    def observe_lag(self, ends: dict[tuple[str, int], int]) -> None:
        consumer: Any = self.app.consumer
        for (topic, partition), following in ends.items():
            highwater = consumer.highwater(TP(topic, partition))
            if highwater is not None:
                lag = max(0, highwater - following)
                self.metrics.lag.labels(topic, str(partition)).set(lag)

    def forget_lag(self, tps: Any) -> None:
        for tp in tps:  # their lag is now the new owner's to report
            self.metrics.lag.remove(tp.topic, str(tp.partition))

    def heartbeat(self, assigned: Callable[[], set[int]]) -> None:
        """Liveness and readiness for /healthz and /readyz, from the event loop itself;
        ``assigned`` tells the wallet partitions assigned to this worker (asked after the
        beat: the loop is alive whatever the consumer answers)."""
        self.health.beat()
        self.kafka.check()
        busy = self.app.rebalancing or self.app.in_recovery
        owned = frozenset(assigned())
        not_ready = worker_readiness(busy, owned, self.processor.recovered)
        self.health.ready(not_ready)
        if not_ready is None:
            # Everything recovered is now long-lived: out of the collector's way.
            self.garbage.settle(owned)

    def install_report(self, recovering: dict[int, Any]) -> None:
        """The SIGUSR1 report (diagnostics.py), from within the running loop."""
        diagnostics.install(self.app, recovering)
