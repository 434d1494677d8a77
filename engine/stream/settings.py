"""The worker's one configuration object: flags first, then environment, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from .garbage import parse_threshold

GC_THRESHOLD = "50000,20,10"
MIN_BATCH_WITHIN, MAX_BATCH_WITHIN = 0.001, 10.0
"""Seconds a partial batch may wait: the agents go back for their batch once per wait even
when nothing comes, and a longer wait would hold a quiet partition's records for about a
session timeout."""


class WorkerSettings(msgspec.Struct, frozen=True):
    catalog: Path
    bootstrap: str = "127.0.0.1:19092"
    app_id: str = "rating-engine"
    data_dir: Path = Path(".rating-engine")
    tick_interval: float = 60.0
    """Seconds between clock ticks sent for every wallet; 0 disables the ticker."""
    batch_size: int = 1000
    """Inputs decided per batch: the offsets of a batch are committed after its events land."""
    batch_within: float = 0.02
    """Seconds a partial batch waits for more inputs, counted from the end of the batch
    before: the most a quiet moment adds to a record's latency on each of the two hops
    (enrich, rate). Shorter waits give smaller batches, so more transactions per second."""
    metrics_port: int = 0
    """Port of the Prometheus ``/metrics`` endpoint; 0 disables it."""
    store: str = "rocksdb://"
    """Faust table store: ``rocksdb://`` (on disk under data_dir) or ``memory://``."""
    snapshot_every: float = 30.0
    """Seconds between snapshots of a busy wallet partition (0: never)."""
    snapshot_max_bytes: int = 900_000
    """A larger snapshot is skipped: Kafka's default record limit is about 1 MiB."""
    session_timeout: float = 10.0
    """Seconds of silence after which the group gives a worker's partitions to another."""
    hold_unknown: float = 10.0
    """Seconds a CDR no SIM-route covers is held for a provisioning command on its way
    (counted from the record's Kafka timestamp; 0: never held). See holding.py."""
    hold_max: int = 100_000
    """At most this many CDRs held at once; beyond it one is routed by the fallback rule."""
    gc_freeze: bool = True
    """Freeze the heap (``gc.freeze``) once the owned partitions are recovered (garbage.py)."""
    gc_threshold: str = GC_THRESHOLD
    """The collector's three thresholds, ``first,second,third`` (``""``: CPython's own)."""

    def __post_init__(self) -> None:
        parse_threshold(self.gc_threshold)  # refused at start-up, not at the first batch
        # Faust reads no wait as "until the batch is full", so a quiet partition would
        # stall; a wait of next to nothing would spin the event loop while there is no input.
        if not MIN_BATCH_WITHIN <= self.batch_within <= MAX_BATCH_WITHIN:
            raise ValueError(
                f"batch_within is seconds from {MIN_BATCH_WITHIN:g} to {MAX_BATCH_WITHIN:g}: "
                f"{self.batch_within!r}"
            )

    @classmethod
    def from_env(
        cls, catalog: str | Path, environ: Mapping[str, str] | None = None, **flags: object
    ) -> WorkerSettings:
        """Build settings from explicit flags (not None), else ``RATING_*`` variables."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"catalog": Path(catalog)}
        from_env = {
            "bootstrap": env.get("KAFKA_BOOTSTRAP"),
            "app_id": env.get("RATING_APP_ID"),
            "data_dir": env.get("RATING_DATA_DIR"),
            "tick_interval": env.get("RATING_TICK_INTERVAL"),
            "metrics_port": env.get("RATING_METRICS_PORT"),
            "store": env.get("RATING_STORE"),
            "snapshot_every": env.get("RATING_SNAPSHOT_EVERY"),
            "snapshot_max_bytes": env.get("RATING_SNAPSHOT_MAX_BYTES"),
            "batch_within": env.get("RATING_BATCH_WITHIN"),
            "session_timeout": env.get("RATING_SESSION_TIMEOUT"),
            "hold_unknown": env.get("RATING_HOLD_UNKNOWN"),
            "hold_max": env.get("RATING_HOLD_MAX"),
            "gc_freeze": env.get("RATING_GC_FREEZE"),
            "gc_threshold": env.get("RATING_GC_THRESHOLD"),
        }
        for name, value in from_env.items():
            if value:
                values[name] = value
        values.update({k: v for k, v in flags.items() if v is not None})
        return msgspec.convert(values, cls, strict=False, dec_hook=_paths)


def _paths(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError
