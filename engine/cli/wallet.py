"""``rating-engine wallet open|close|suspend|resume``: a wallet's life as commands to its owner.

``open`` stamps the latest published catalog revision on the ``OpenWallet`` (read from
``catalog.revisions``; 0 when none is), so every owner starts the wallet on the same one,
whoever decides it and whenever. The id is derived from the arguments (the revision too:
the same terms asked again under a newer catalog are a new request)."""

from __future__ import annotations

import argparse

import msgspec

from ..domain import Command
from ..domain.commands import CloseWallet, OpenWallet, ResumeWallet, SuspendWallet
from ..stream.publisher import derived_command_id
from ..stream.revisions import latest_revision
from ..stream.topics import load_topics
from .args import Subparsers, bootstrap
from .sending import add_sending, moment, refuse_what_any_wallet_would, send

_TERMS = (
    "currency",
    "name",
    "overdraft_limit",
    "suspend_at",
    "resume_at",
    "thresholds",
    "cycle_anchor_day",
)
_BY_HAND: dict[str, type[CloseWallet | SuspendWallet | ResumeWallet]] = {
    "close": CloseWallet,
    "suspend": SuspendWallet,
    "resume": ResumeWallet,
}


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "wallet",
        help="open, close, suspend or resume a wallet (commands to wallet.commands)",
        description="A wallet's life as commands, keyed by wallet. --id defaults to an id "
        "derived from the arguments, so a retried call is applied once.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text)
        sub.add_argument("--wallet", required=True, help="wallet id")
        add_sending(sub)
        sub.set_defaults(func=run)
        return sub

    opened = verb("open", "open a wallet the catalog does not list, on these terms")
    opened.add_argument("--currency", required=True, help="ISO 4217 code, e.g. EUR")
    opened.add_argument("--name", default="", help="display name (default: the wallet id)")
    opened.add_argument("--overdraft-limit", default="0", help="credit allowed below zero")
    opened.add_argument("--suspend-at", default="0", help="balance that suspends the SIMs")
    opened.add_argument("--resume-at", default="0", help="balance a top-up must leave to resume")
    opened.add_argument(
        "--threshold",
        dest="thresholds",
        action="append",
        default=[],
        help="warn when the balance falls to this amount (repeat for more)",
    )
    opened.add_argument(
        "--cycle-anchor-day", type=int, default=1, help="day of month a cycle starts, 1..28"
    )
    for name, text in (
        ("close", "close a wallet (refused while it holds a SIM)"),
        ("suspend", "suspend a wallet by hand (bar its SIMs) until resumed"),
        ("resume", "lift a suspension by hand"),
    ):
        verb(name, text).add_argument("--reason", required=True, help="why (kept on the event)")


def run(args: argparse.Namespace) -> int:
    return send(args, [command_from_args(args)], "command line")


def command_from_args(args: argparse.Namespace) -> Command:
    """The command the arguments describe, checked as the wallet would."""
    at = moment(args)
    identity: dict[str, str | None] = {"wallet": args.wallet, "at": args.at}
    command: Command
    if args.verb == "open":
        asked = OpenWallet(
            "-",
            args.wallet,
            at,
            currency=args.currency,
            name=args.name,
            overdraft_limit=args.overdraft_limit,
            suspend_at=args.suspend_at,
            resume_at=args.resume_at,
            thresholds=tuple(args.thresholds),
            cycle_anchor_day=args.cycle_anchor_day,
        )
        # Checked before the broker is asked for the revision: a typing mistake costs nothing.
        refuse_what_any_wallet_would(asked)
        revision = latest_revision(bootstrap(args), load_topics())
        terms = {k: str(v) for k, v in msgspec.structs.asdict(asked).items() if k in _TERMS}
        terms["thresholds"] = ",".join(asked.thresholds)
        command_id = args.id or derived_command_id(
            "open-wallet", identity | terms | {"revision": str(revision)}
        )
        command = msgspec.structs.replace(asked, command_id=command_id, revision=revision)
    else:
        kind = f"{args.verb}-wallet"
        command_id = args.id or derived_command_id(kind, identity | {"reason": args.reason})
        command = _BY_HAND[args.verb](command_id, args.wallet, at, args.reason)
    refuse_what_any_wallet_would(command)
    return command
