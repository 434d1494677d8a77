"""``rating-engine rejected list|export|republish``: the records on cdr.rejected, counted,
written out for editing, or sent back to where they came from."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..codec import Rejected, encode, read_command
from ..domain import Command
from ..stream.publisher import publish_cdrs, publish_commands
from ..stream.publisher import render as render_publish
from ..stream.topics import Topics, load_topics
from .args import Subparsers, add_bootstrap, bootstrap

if TYPE_CHECKING:
    from ..stream.rejected import RejectedRecord

_DESCRIPTION = (
    "Every rejected record keeps its original bytes and origin. After fixing the cause "
    "(provisioning a SIM, correcting a record), send the records back to where they came from "
    "with `republish`, or `export` them to a file, edit it, and `publish` it. Sending a record "
    "twice charges nothing twice: a CDR already rated is rejected as a duplicate."
)
_UNREADABLE = "not text, or only a prefix kept"


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "rejected",
        help="list, export or send again the records on cdr.rejected",
        description=_DESCRIPTION,
    )
    actions = parser.add_subparsers(dest="rejected_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("list", run_list, "count the rejected records by reason and show them"),
        ("export", run_export, "write the original records, one per line, to --out"),
        ("republish", run_republish, "send the records back to their origin topic"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        add_bootstrap(action)
        action.add_argument(
            "--reason", action="append", help="only this reason (repeatable), e.g. unknown_sim"
        )
        action.set_defaults(func=func)
        if name == "list":
            action.add_argument("--json", action="store_true", help="print JSON")
            action.add_argument("--limit", type=int, default=20, help="records shown")
        elif name == "export":
            action.add_argument("--out", required=True, help="the JSON Lines file")
        else:
            action.add_argument(
                "--dry-run", action="store_true", help="count what would be sent, send nothing"
            )


def _selected(args: argparse.Namespace) -> list[RejectedRecord]:
    from ..stream.rejected import read_rejected, select

    return list(select(read_rejected(bootstrap(args), load_topics()), args.reason or ()))


def run_list(args: argparse.Namespace) -> int:
    from ..stream.rejected import Tally

    records = _selected(args)
    if args.json:
        print(encode({"tally": Tally.of(records), "records": records}).decode())
        return 0
    tally = Tally.of(records)
    print(f"{tally.records:,} rejected records on {load_topics().cdr_rejected.name}")
    for reason, n in tally.by_reason.items():
        print(f"  {reason:<28} {n:>10,}")
    for record in records[: args.limit]:
        r = record.rejected
        print(f"{record.partition}@{record.offset} {r.reason} {r.origin}: {r.detail}")
    if len(records) > args.limit:
        print(f"... and {len(records) - args.limit:,} more (--limit, or --json for all)")
    return 0


def _line(record: RejectedRecord) -> bytes | None:
    """The original record as one line, or ``None`` when it cannot be sent as it is."""
    from ..stream.rejected import as_line

    original = record.original
    return None if original is None else as_line(original)


def run_export(args: argparse.Namespace) -> int:
    written = unreadable = 0
    with Path(args.out).open("wb") as out:
        for record in _selected(args):
            line = _line(record)
            if line is None:
                unreadable += 1
                continue
            out.write(line + b"\n")
            written += 1
    print(f"wrote {written:,} rejected records to {args.out}", file=sys.stderr)
    if unreadable:
        print(f"{unreadable:,} records skipped: {_UNREADABLE}", file=sys.stderr)
    return 0


def run_republish(args: argparse.Namespace) -> int:
    """Send each selected record back to the topic it came from (CDRs to cdr.raw, commands
    to wallet.commands); what cannot be sent as it is, is counted and left alone."""
    topics = load_topics()
    cdrs, commands, left = by_origin(_selected(args), topics)
    print(f"{len(cdrs):,} CDRs and {len(commands):,} commands to send again", file=sys.stderr)
    for why, n in left.items():
        print(f"{n:,} left alone: {why}", file=sys.stderr)
    if args.dry_run:
        return 0
    ok = True
    if cdrs:
        with tempfile.NamedTemporaryFile(suffix=".jsonl") as handle:
            handle.write(b"\n".join(cdrs) + b"\n")
            handle.flush()
            result = publish_cdrs(Path(handle.name), topics.cdr_raw, bootstrap(args))
        result.input = "rejected CDRs"
        print(render_publish(result))
        ok = result.ok
    if commands:
        sent = publish_commands(commands, topics.wallet_commands, bootstrap(args), "rejected")
        print(f"{sent.delivered:,} commands sent again to {sent.topic}, {sent.failed:,} failed")
        ok = ok and sent.ok
    return 0 if ok else 1


def by_origin(
    records: list[RejectedRecord], topics: Topics
) -> tuple[list[bytes], list[Command], dict[str, int]]:
    """The CDR lines and commands to send again, and why each other record is left alone."""
    cdrs: list[bytes] = []
    commands: list[Command] = []
    left: dict[str, int] = {}
    for record in records:
        line = _line(record)
        origin = record.origin_topic
        if line is None:
            why = _UNREADABLE
        elif origin == topics.cdr_raw.name:
            cdrs.append(line)
            continue
        elif origin == topics.wallet_commands.name:
            command = read_command(line)
            if not isinstance(command, Rejected):
                commands.append(command)
                continue
            why = "a command that still does not decode: fix it, then `command --input`"
        else:
            why = f"origin {record.rejected.origin!r} is not a topic this engine reads"
        left[why] = left.get(why, 0) + 1
    return cdrs, commands, left
