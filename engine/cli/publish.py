"""``rating-engine publish``: send a CDR file to cdr.raw, keyed by ICCID."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec

from ..codec import encode
from ..stream.publisher import PublishResult, publish_cdrs
from ..stream.publisher import render as render_publish
from ..stream.topics import load_topics
from .args import Subparsers, UsageError, add_bootstrap, add_progress, bootstrap, progress


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "publish", help="send a CDR file to Kafka (cdr.raw), keyed by ICCID"
    )
    parser.add_argument("--input", required=True, help="CDRs, one JSON object per line")
    add_bootstrap(parser)
    parser.add_argument("--rate", type=float, help="offer at most N records per second, steadily")
    add_progress(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be a positive number of records per second")
    topics = load_topics()
    result = publish_cdrs(
        Path(args.input), topics.cdr_raw, bootstrap(args), rate=args.rate, progress=progress(args)
    )
    return report(result, args.json)


def report(result: PublishResult, as_json: bool) -> int:
    """Print what was delivered; the exit code says whether all of it was (130: stopped)."""
    if as_json:
        print(encode(msgspec.to_builtins(result)).decode())
    else:
        print(render_publish(result))
    if result.interrupted:
        return 130
    return 0 if result.ok else 1
