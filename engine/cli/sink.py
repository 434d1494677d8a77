"""``rating-engine sink``: store wallet.events in the event store (and project them)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from .args import Subparsers, UsageError, add_bootstrap, add_catalog, add_store, bootstrap
from .resources import opened_store, projector

_DESCRIPTION = (
    "Consume wallet.events, append every event to the event store and commit the offsets only "
    "after the write is durable; keep every catalog revision of catalog.revisions in the "
    "store too; with --clickhouse, keep the projections up to date with the store. Several "
    "sinks in one --group share the partitions. Stops cleanly on SIGTERM / Ctrl-C."
)


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "sink",
        help="store wallet.events in the event store (and project it to ClickHouse)",
        description=_DESCRIPTION,
    )
    add_store(parser)
    parser.add_argument("--clickhouse", help="projections: chdb:///PATH or http(s)://HOST:PORT")
    add_catalog(parser, help="catalog YAML: pool allowances and owners for the projections")
    add_bootstrap(parser)
    parser.add_argument(
        "--group", default="rating-engine-sink", help="consumer group (default rating-engine-sink)"
    )
    parser.add_argument(
        "--batch-size", type=int, help="most records per store transaction (default 2000)"
    )
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=0.0,
        help="stop after this many idle seconds (default: run until stopped)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=int,
        help="write wallet snapshots to the store after this many events stored since the "
        "last ones (default: $RATING_SINK_SNAPSHOT_EVERY, else 100000; 0: never)",
    )
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..stream.health import Health
    from ..stream.metrics import SinkMetrics
    from ..stream.revision_sink import RevisionKeeper
    from ..stream.sink import Sink, SinkSettings, install_signal_handlers, open_store_waiting
    from ..stream.topics import load_topics

    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    settings = SinkSettings(
        bootstrap=bootstrap(args),
        group=args.group,
        batch_size=args.batch_size or SinkSettings.batch_size,
        idle_exit=args.idle_exit,
        snapshot_every=snapshot_every(args.snapshot_every, os.environ),
    )
    topics = load_topics()
    metrics, health = SinkMetrics(), Health()
    if args.metrics_port:  # first: alive (and not ready) while it waits for the store
        metrics.serve(args.metrics_port, health)
    with opened_store(args.store, lambda url: open_store_waiting(url, health, metrics)) as store:
        projection = projector(args.clickhouse, args.catalog) if args.clickhouse else None
        sink = Sink(settings, topics, store, projection, metrics, health, args.store)
        install_signal_handlers(sink)
        keeper = RevisionKeeper(settings.bootstrap, topics, store).start()
        try:
            progress = sink.run()
        finally:
            keeper.stop()
    print(
        f"{progress.records:,} decision records read, {progress.stored:,} events stored, "
        f"{progress.duplicates:,} already stored; store position {progress.position:,}; "
        f"{keeper.stored:,} catalog revisions stored; "
        f"{sink.snapshots.written:,} wallet snapshots written"
        + (f" ({sink.snapshots.failures:,} rounds failed)" if sink.snapshots.failures else "")
    )
    return 0


SNAPSHOT_EVERY = "RATING_SINK_SNAPSHOT_EVERY"


def snapshot_every(flag: int | None, environ: Mapping[str, str]) -> int:
    """Events stored between rounds of store snapshots: the flag, else the environment
    variable, else ``SinkSettings``' default."""
    from ..stream.sink import SinkSettings

    if flag is not None:
        value, source = flag, "--snapshot-every"
    elif environ.get(SNAPSHOT_EVERY, "").strip():
        source = SNAPSHOT_EVERY
        try:
            value = int(environ[SNAPSHOT_EVERY])
        except ValueError:
            raise UsageError(f"{source} must be a whole number of events") from None
    else:
        return SinkSettings.snapshot_every
    if value < 0:
        raise UsageError(f"{source} must be >= 0 (0: no snapshots)")
    return value
