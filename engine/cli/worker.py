"""``rating-engine worker``: the streaming worker (Faust): enrich, rate, clock."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..catalog import load_catalog_text
from .args import Subparsers, add_bootstrap, add_catalog

_DESCRIPTION = (
    "Consume cdr.raw and wallet.commands, rate with the pure core, write wallet.events, "
    "network.actions and cdr.rejected. --catalog must be a published catalog revision (the "
    "same bytes); on an empty catalog.revisions it is published as revision 1. Stops "
    "cleanly on SIGTERM / Ctrl-C."
)

log = logging.getLogger(__name__)


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "worker",
        help="run the streaming worker (Faust): enrich, rate, clock",
        description=_DESCRIPTION,
    )
    add_catalog(
        parser,
        required=True,
        help="catalog YAML file: a published revision, or revision 1 when none was published",
    )
    add_bootstrap(parser)
    parser.add_argument("--app-id", help="Faust app id = consumer group (default rating-engine)")
    parser.add_argument("--data-dir", help="worker data directory (default .rating-engine)")
    parser.add_argument(
        "--tick-interval", type=float, help="seconds between clock ticks; 0 disables (default 60)"
    )
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    parser.add_argument("--batch-size", type=int, help="inputs per batch (default 1000)")
    parser.add_argument(
        "--batch-within",
        type=float,
        help="seconds a partial batch waits for more inputs (default 0.02)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=float,
        help="seconds between partition snapshots on wallet.snapshots (default 30; 0: never)",
    )
    parser.add_argument(
        "--hold-unknown",
        type=float,
        help="seconds a CDR no SIM-route covers yet is held for its provisioning (default 10; "
        "0: never held)",
    )
    parser.add_argument("--store", help="Faust table store: rocksdb:// (default) or memory://")
    parser.add_argument("--loglevel", default="warning", help="log level (default warning)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Faust loads only for the commands that run it.
    from ..stream import revisions as catalog_revisions
    from ..stream.live_catalogs import CatalogRevisions
    from ..stream.memory import cap_arenas
    from ..stream.runner import run_worker
    from ..stream.settings import WorkerSettings
    from ..stream.topics import load_topics

    cap_arenas()  # before any thread: fewer malloc arenas hold less freed memory
    settings = WorkerSettings.from_env(
        args.catalog,
        bootstrap=args.bootstrap,
        app_id=args.app_id,
        data_dir=args.data_dir,
        tick_interval=args.tick_interval,
        metrics_port=args.metrics_port,
        batch_size=args.batch_size,
        batch_within=args.batch_within,
        snapshot_every=args.snapshot_every,
        store=args.store,
        hold_unknown=args.hold_unknown,
    )
    # A file that does not load is refused before anything; its catalog is built once, and
    # stands for its revision too (the same bytes: the same digest).
    text, digest = catalog_revisions.read_source(Path(args.catalog))
    loaded = load_catalog_text(text, args.catalog)
    topics = load_topics()
    # The base-revision rule: refuses to start on a file that is not a published revision.
    base = catalog_revisions.base_revision(settings.bootstrap, topics, Path(args.catalog))
    log.info("%s is catalog revision %d", args.catalog, base)
    known = {digest: loaded}
    revisions = CatalogRevisions(settings.bootstrap, topics, built=known)
    revisions = revisions.start()
    try:
        return run_worker(settings, loaded, topics, loglevel=args.loglevel, revisions=revisions)
    finally:
        revisions.stop()
