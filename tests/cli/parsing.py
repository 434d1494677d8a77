"""One command module on its own: its parser alone, and what it runs."""

from __future__ import annotations

import argparse
from types import ModuleType


def parse(command: ModuleType, *argv: str) -> argparse.Namespace:
    """``argv`` parsed by a parser that only ``command`` registered into."""
    parser = argparse.ArgumentParser(prog="rating-engine")
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run(command: ModuleType, *argv: str) -> int:
    args = parse(command, *argv)
    code: int = args.func(args)
    return code
