"""``rating-engine replay``: re-rate stored CDRs with another catalog and settle the
differences, appended here (offline) or sent to the wallets' owners (stream)."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..codec import encode
from ..domain import AdjustRating
from ..stream.publisher import publish_commands
from ..stream.topics import StreamError, load_topics
from .args import (
    Subparsers,
    UsageError,
    add_catalog,
    add_json,
    add_progress,
    add_store,
    bootstrap,
    catalog,
    instant,
    progress,
)
from .resources import opened_store

_DESCRIPTION = (
    "Re-run every stored input of each wallet with the catalog --catalog, compare the CDRs "
    "started in [--from, --to) with what was charged for them, and settle each difference in "
    "the paying wallet, now: appended to the store (--mode offline) or sent to the wallet's "
    "owner as an AdjustRating command (--mode stream). History is never rewritten; running "
    "it again adjusts nothing more."
)
_MODE_HELP = (
    "offline: decide the adjustments here and append them (no running worker; refused when "
    "--bootstrap or KAFKA_BOOTSTRAP names a broker where the worker group runs); stream: send "
    "them as AdjustRating commands to wallet.commands, for the wallets' owners to decide and "
    "the sink to store (default: offline)"
)


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "replay",
        help="re-rate stored CDRs with another catalog and settle the differences",
        description=_DESCRIPTION,
    )
    add_store(parser)
    add_catalog(parser, required=True, help="the new catalog YAML file")
    parser.add_argument("--from", dest="start", help="only CDRs started at or after (ISO 8601)")
    parser.add_argument("--to", dest="end", help="only CDRs started before (ISO 8601)")
    parser.add_argument("--wallet", help="only the CDRs rated in this wallet")
    parser.add_argument("--dry-run", action="store_true", help="report the impact, append nothing")
    parser.add_argument("--mode", choices=("offline", "stream"), default="offline", help=_MODE_HELP)
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: KAFKA_BOOTSTRAP)")
    parser.add_argument(
        "--app-id",
        default=os.environ.get("RATING_APP_ID", "rating-engine"),
        help="the workers' group id (default: RATING_APP_ID, else rating-engine)",
    )
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=os.cpu_count() or 1,
        help="processes re-rating wallets side by side, the wallets shared out by their "
        "wallet.commands partition; at most one per partition in use; the result is the same "
        "whatever the number (default: the number of CPUs)",
    )
    parser.add_argument(
        "--from-snapshots",
        action="store_true",
        help="with --from: re-rate each wallet from its latest store snapshot before the "
        "window (store snapshot), keeping the history before it as decided, instead of "
        "from its first input",
    )
    add_json(parser, "print the report as JSON")
    add_progress(parser)
    parser.set_defaults(func=run)


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes, 1 or more: {text!r}")
    return n


def run(args: argparse.Namespace) -> int:
    from ..offline.replay import ReplayError, render, replay
    from ..offline.replay_jobs import ReplayJobError
    from ..store import open_store

    start, end = instant("--from", args.start), instant("--to", args.end)
    rules = catalog(args.catalog)
    path = Path(args.catalog)
    label = f"{path.name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
    send = _sender(args) if args.mode == "stream" else None
    if args.mode == "offline" and not args.dry_run:
        _refuse_behind_workers(args)
    with opened_store(args.store) as store:
        try:
            report = replay(
                store,
                rules,
                start,
                end,
                args.wallet,
                args.dry_run,
                progress=progress(args),
                label=label,
                send=send,
                jobs=args.jobs,
                opener=lambda: open_store(args.store),
                from_snapshots=args.from_snapshots,
            )
        except ReplayError as exc:
            raise UsageError(str(exc)) from None
        except ReplayJobError as exc:
            print(f"rating-engine: error: {exc}", file=sys.stderr)
            return 1
    print(encode(report).decode() if args.json else render(report))
    return 0 if not report.rejected else 1


def _sender(args: argparse.Namespace) -> Callable[[Sequence[AdjustRating]], int]:
    """Publishes a wallet's adjustments to ``wallet.commands``; stops the replay when Kafka
    refuses any (a retried replay sends the same command ids, so nothing repeats)."""
    from ..stream.admin import admin_client, cluster_metadata

    servers = bootstrap(args)
    cluster_metadata(admin_client(servers), servers)  # no broker: say so before re-rating
    topic = load_topics().wallet_commands

    def send(commands: Sequence[AdjustRating]) -> int:
        result = publish_commands(commands, topic, servers, "replay")
        if not result.ok:
            reasons = ", ".join(f"{n} {why}" for why, n in result.errors.items())
            raise StreamError(
                f"Kafka refused {result.failed} of {len(commands)} adjustments ({reasons}); "
                "run the replay again: what was delivered is not sent twice"
            )
        return result.delivered

    return send


def _refuse_behind_workers(args: argparse.Namespace) -> None:
    """An offline replay appends to the store itself; behind a running worker group that
    would give a wallet a second writer, so it is refused when the group has members."""
    from ..stream.admin import BrokerUnavailable, group_members

    servers = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if not servers:
        return  # a deployment without Kafka: the store is the only record
    try:
        members = group_members(servers, args.app_id)
    except BrokerUnavailable:
        print(
            f"rating-engine: warning: no broker at {servers} to check for running workers; "
            "appending offline",
            file=sys.stderr,
        )
        return
    if members:
        raise UsageError(
            f"worker group {args.app_id!r} has {members} running member(s) at {servers}: "
            "an offline replay would append behind the wallets' owners. Use --mode stream "
            "to send the adjustments through them, or stop the workers first"
        )
