"""What several commands take alike: instants, catalog paths, store and ClickHouse URLs,
Kafka servers and progress bars, each declared and read in one place so the flags mean the
same everywhere."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from ..catalog import load_catalog
from ..domain import Catalog
from ..domain.limits import Limits, time_problem
from ..stream.admin import bootstrap_servers

# What ``add_subparsers`` returns, which each command module registers its parser with;
# generic only to the type checker.
if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction

BOOTSTRAP_HELP = "Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP, else 127.0.0.1:19092)"
STORE_HELP = "event store URL: sqlite:///PATH or postgresql://..."
CLICKHOUSE_HELP = "ClickHouse: chdb:///PATH[?database=NAME] or http(s)://USER:PASS@HOST:PORT/DB"


class UsageError(Exception):
    """A mistake in how the command was called: print it and exit 2."""


def instant(
    flag: str,
    value: str | None,
    *,
    named: str = "ISO 8601",
    limits: Limits | None = None,
) -> datetime | None:
    """``value`` as an aware time, ``None`` when the flag was not given. An instant without an
    offset would be read in this machine's zone, so it is refused; with ``limits``, so is one
    the wallets would reject as ``invalid_time`` after it was sent."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not an {named} time") from None
    if at.tzinfo is None:
        raise UsageError(f"{flag} {value!r} needs a UTC offset, e.g. 2026-09-01T00:00:00Z")
    problem = None if limits is None else time_problem(limits, at)
    if problem is not None:
        raise UsageError(f"{flag}: {problem}")
    return at


def add_catalog(
    parser: argparse.ArgumentParser,
    *,
    required: bool = False,
    default: str | None = None,
    help: str = "catalog YAML file",
) -> None:
    parser.add_argument("--catalog", required=required, default=default, help=help)


def catalog(path: str) -> Catalog:
    return load_catalog(Path(path))


def add_store(
    parser: argparse.ArgumentParser, *, required: bool = True, help: str = STORE_HELP
) -> None:
    parser.add_argument("--store", required=required, help=help)


def add_bootstrap(parser: argparse.ArgumentParser, *, keep_earlier: bool = False) -> None:
    """``keep_earlier``: a subcommand's flag that its parent takes too; SUPPRESS keeps the
    value given before the subcommand when it is not given again after it."""
    default = argparse.SUPPRESS if keep_earlier else None
    parser.add_argument("--bootstrap", default=default, help=BOOTSTRAP_HELP)


def bootstrap(args: argparse.Namespace) -> str:
    return bootstrap_servers(args.bootstrap)


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )


def progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


def add_json(parser: argparse.ArgumentParser, help: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help)
