"""``rating-engine query``: one SQL statement against the projections, printed."""

from __future__ import annotations

import argparse

from ..codec import encode
from .args import CLICKHOUSE_HELP, Subparsers

_DESCRIPTION = (
    "Run one SQL statement against the projections (tables and views in docs/analytics.md) "
    "and print an aligned table, or JSON rows with --json. Read-only unless --write: one "
    "SELECT-like statement, no files, URLs or other servers."
)


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "query",
        help="run SQL against the ClickHouse projections and print the answer",
        description=_DESCRIPTION,
    )
    parser.add_argument("sql", help="the SQL statement")
    parser.add_argument("--clickhouse", required=True, help=CLICKHOUSE_HELP)
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    parser.add_argument(
        "--write",
        action="store_true",
        help="allow statements that change data, files or the server (default: read-only)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..projections.clickhouse import connect
    from ..projections.query import render_table, run_query

    client = connect(args.clickhouse)
    try:
        answer = run_query(client, args.sql, write=args.write)
    finally:
        client.close()
    print(encode(answer.records()).decode() if args.json else render_table(answer))
    return 0
