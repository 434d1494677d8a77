"""The ``rating-engine`` parser, assembled from the command modules, and the one place that
turns a failure into a message and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import msgspec

from ..catalog import CatalogError
from ..offline.generate import GenerateError
from ..offline.inputs import InputError
from ..projections.clickhouse import ProjectionError
from ..secrets import SecretError, password_in_url
from ..store import StoreError
from ..stream.topics import StreamError
from . import (
    catalog,
    command,
    demo,
    generate,
    project,
    publish,
    query,
    rate,
    rejected,
    replay,
    schemas,
    sim,
    sink,
    store,
    topics,
    wallet,
    worker,
)
from .args import UsageError

# In the order `rating-engine --help` lists them.
COMMANDS = (
    catalog,
    rate,
    generate,
    schemas,
    topics,
    publish,
    command,
    wallet,
    sim,
    worker,
    sink,
    demo,
    query,
    project,
    replay,
    rejected,
    store,
)

# URL flags that may name a server; a password in them would be in every process list.
_SECRET_VARIABLES = {
    "store": "RATING_EVENT_STORE_PASSWORD_FILE (or RATING_EVENT_STORE_PASSWORD, PGPASSFILE)",
    "clickhouse": "RATING_CLICKHOUSE_PASSWORD_FILE (or RATING_CLICKHOUSE_PASSWORD)",
}

# A user's mistake in a file, a catalog, a store or a broker: its message is the whole story.
_REPORTED = (
    CatalogError,
    InputError,
    GenerateError,
    StreamError,
    SecretError,
    msgspec.MsgspecError,
    ProjectionError,
    StoreError,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rating-engine",
        description="Event-sourced rating engine for IoT connectivity wallets.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def _refuse_passwords_in_argv(args: argparse.Namespace) -> None:
    for name, variables in _SECRET_VARIABLES.items():
        value = getattr(args, name, None)
        if isinstance(value, str) and password_in_url(value):
            raise UsageError(
                f"--{name}: the URL carries a password, which every user of this machine "
                f"can read in the process list; leave it out of the URL and give it "
                f"through {variables}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake is a message and a non-zero exit, never a
    traceback (argparse's own refusals exit 2 with the usage, as this does)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _refuse_passwords_in_argv(args)
        return func(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"rating-engine: error: {exc}", file=sys.stderr)
        return 2
    except _REPORTED as exc:
        print(f"rating-engine: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rating-engine: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
