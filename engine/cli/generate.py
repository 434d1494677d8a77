"""``rating-engine generate``: a realistic, deterministic CDR file (and commands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..offline.generate import generate_cdrs, generate_commands, write_lines
from .args import Subparsers, UsageError, add_catalog, catalog


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("generate", help="write a realistic, deterministic CDR file")
    add_catalog(parser, default="examples/catalog.yaml")
    parser.add_argument(
        "--sims", type=int, required=True, help="use the first N SIMs of the catalog"
    )
    parser.add_argument("--cdrs", type=int, required=True, help="number of CDR lines")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--days", type=int, default=91, help="days of usage from 2026-09-01")
    parser.add_argument("--faults", type=float, default=0.002, help="share of bad records")
    parser.add_argument("--out", help="output file (default: stdout)")
    parser.add_argument("--commands-out", help="also write ticks, top-ups and vouchers here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rules = catalog(args.catalog)
    if args.cdrs < 0:
        raise UsageError("--cdrs must be >= 0")
    out = Path(args.out) if args.out else None
    count = write_lines(
        out, generate_cdrs(rules, args.sims, args.cdrs, args.seed, args.days, args.faults)
    )
    if args.commands_out:
        n = write_lines(Path(args.commands_out), generate_commands(rules, args.seed, args.days))
        print(f"wrote {n:,} commands to {args.commands_out}", file=sys.stderr)
    print(f"wrote {count:,} CDRs" + (f" to {out}" if out else ""), file=sys.stderr)
    return 0
