"""``rating-engine rate``: rate a CDR file in process (no Kafka), optionally into a store
and on to ClickHouse."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from ..offline.run import run_rate
from .args import Subparsers, UsageError, add_catalog, add_progress, add_store, catalog, progress
from .resources import opened_store, projector


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "rate", help="rate a CDR file offline (no Kafka) and print a summary"
    )
    add_catalog(parser, required=True)
    parser.add_argument("--input", required=True, help="CDRs, one JSON object per line")
    parser.add_argument(
        "--commands", help="commands (top-ups, ticks, ...), one JSON object per line"
    )
    parser.add_argument("--events-out", help="write every event as JSON lines to this file")
    parser.add_argument("--rejected-out", help="write rejected records as JSON lines to this file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_store(
        parser,
        required=False,
        help="also append every event to this event store (sqlite:///PATH, ...)",
    )
    parser.add_argument(
        "--clickhouse", help="then project the store into ClickHouse (chdb:///PATH, http://...)"
    )
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.clickhouse and not args.store:
        raise UsageError("--clickhouse needs --store: the projections are made from the store")
    rules = catalog(args.catalog)
    shown = progress(args)
    with opened_store(args.store) if args.store else nullcontext() as store:
        code = run_rate(
            rules,
            Path(args.input),
            Path(args.commands) if args.commands else None,
            events_out=Path(args.events_out) if args.events_out else None,
            rejected_out=Path(args.rejected_out) if args.rejected_out else None,
            as_json=args.json,
            progress=shown,
            store=store,
        )
        if store is not None and args.clickhouse:
            projector(args.clickhouse, args.catalog).project(store, progress=shown)
    return code
