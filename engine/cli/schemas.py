"""``rating-engine schemas``: write the JSON Schemas, or check that they are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import schemas
from .args import Subparsers


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("schemas", help="write (or --check) the JSON Schemas in schemas/")
    parser.add_argument("--dir", default="schemas", help="directory (default: schemas)")
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not args.check:
        for path in schemas.write(directory):
            print(f"wrote {path}")
        return 0
    stale = schemas.stale(directory)
    if stale:
        print(f"stale schemas in {directory}: {', '.join(stale)}", file=sys.stderr)
        print("regenerate with: rating-engine schemas", file=sys.stderr)
        return 1
    print(f"schemas in {directory} are up to date")
    return 0
