"""``rating-engine project`` and ``rebuild``: the event store folded into ClickHouse, from
where the last run stopped or from scratch."""

from __future__ import annotations

import argparse

from .args import CLICKHOUSE_HELP, Subparsers, add_catalog, add_progress, add_store, progress
from .resources import opened_store, projector

_PROJECT = "apply the events stored since the last run to ClickHouse"
_REBUILD = "drop the projections and fold the whole event store again"


def register(commands: Subparsers) -> None:
    for name, func, text in (
        ("project", run_project, _PROJECT),
        ("rebuild", run_rebuild, _REBUILD),
    ):
        parser = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_store(parser)
        parser.add_argument("--clickhouse", required=True, help=CLICKHOUSE_HELP)
        add_catalog(parser, help="catalog YAML: dimension tables and pool allowances")
        add_progress(parser)
        if name == "rebuild":
            parser.add_argument(
                "--direct",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="let ClickHouse read the store itself (a SQLite file through sqlite(), "
                "PostgreSQL over TCP through postgresql(); default: whenever it can), or "
                "insert the events from Python",
            )
        parser.set_defaults(func=func)


def run_project(args: argparse.Namespace) -> int:
    return _fold(args, rebuild=False)


def run_rebuild(args: argparse.Namespace) -> int:
    return _fold(args, rebuild=True)


def _fold(args: argparse.Namespace, rebuild: bool) -> int:
    shown = progress(args)
    target = projector(args.clickhouse, args.catalog)
    try:
        with opened_store(args.store) as store:
            if rebuild:
                applied = target.rebuild(store, progress=shown, direct=args.direct)
            else:
                applied = target.project(store, progress=shown)
            counts = target.counts()
            position = target.position()
    finally:
        target.client.close()
    rows = ", ".join(f"{table} {n:,}" for table, n in counts.items())
    print(f"{applied:,} events applied; projected up to store position {position:,}")
    print(f"rows: {rows}")
    return 0
