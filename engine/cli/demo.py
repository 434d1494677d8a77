"""``rating-engine demo``: the whole system on one machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import Subparsers, UsageError, add_catalog

_DESCRIPTION = (
    "Start a local Kafka broker (or use KAFKA_BOOTSTRAP), the topics, a worker and a sink; "
    "publish a generated CDR stream; wait until everything is rated, stored and projected; "
    "print a summary read from ClickHouse; stop what it started."
)


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "demo",
        help="the whole system on one machine: broker, worker, sink, CDRs, summary",
        description=_DESCRIPTION,
    )
    add_catalog(parser, default="examples/catalog.yaml")
    parser.add_argument(
        "--out", default="out/demo", help="folder for everything the run makes (emptied first)"
    )
    parser.add_argument(
        "--cdrs", type=int, default=100_000, help="CDRs to generate (default 100000)"
    )
    parser.add_argument("--sims", type=int, default=5000, help="SIMs that send them (default 5000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoSettings, run_demo

    if args.cdrs < 1 or args.sims < 1:
        raise UsageError("--cdrs and --sims must be >= 1")
    settings = DemoSettings(
        catalog=Path(args.catalog), out=Path(args.out), sims=args.sims, cdrs=args.cdrs
    )
    return run_demo(settings)
