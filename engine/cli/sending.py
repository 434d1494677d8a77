"""What every verb that sends wallet commands does alike (``command``, ``wallet``, ``sim``):
when a command applies (``--at``), which id it has, what is refused before it is sent (by
the wallet's own rules), and sending it, or with ``--dry-run`` showing it.

A refusal found here costs the caller a usage message; the same mistake found by the
wallet would only be a ``CommandRejected`` event the caller never sees."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from ..codec import Rejected, encode, read_command
from ..domain import Command, TopUp, WriteOffDebt
from ..domain.account import positive_amount
from ..domain.commands import CloseWallet, OpenWallet, ResumeWallet, SuspendWallet
from ..domain.limits import DEFAULT_LIMITS
from ..domain.provisioning import open_terms
from ..domain.refusal import Refused
from ..offline.inputs import InputError
from ..stream.publisher import publish_commands
from ..stream.topics import load_topics
from .args import UsageError, add_bootstrap, add_progress, bootstrap, instant, progress
from .publish import report

LISTED = 10
"""Bad lines of an input file listed before the rest are only counted."""

_REASONED = (WriteOffDebt, CloseWallet, SuspendWallet, ResumeWallet)


def add_sending(parser: argparse.ArgumentParser, *, bulk: bool = False) -> None:
    """The flags of a verb that sends commands; ``bulk``: it may send many (a progress bar)."""
    parser.add_argument("--id", help="command id (default: derived from the arguments)")
    parser.add_argument("--at", help="when it applies, RFC 3339 with offset (default: now)")
    add_bootstrap(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="build and check the commands, send nothing, print them (JSON lines)",
    )
    if bulk:
        add_progress(parser)


def moment(args: argparse.Namespace) -> datetime:
    """``--at``, refused if no wallet would take it; else now (the CLI may read the clock,
    the domain never does; a second is fine enough)."""
    given = instant("--at", args.at, named="RFC 3339", limits=DEFAULT_LIMITS)
    return given or datetime.now(UTC).replace(microsecond=0)


def refuse_what_any_wallet_would(command: Command) -> None:
    """`UsageError` if the wallet would refuse ``command`` whatever its state."""
    if isinstance(command, TopUp | WriteOffDebt) and command.amount is not None:
        _amount(command.amount)
    if isinstance(command, TopUp | OpenWallet) and not _currency_code(command.currency):
        # The wallet only compares a top-up's with its own currency; a code that cannot be
        # any wallet's is a typing mistake, better caught before it costs a rejection.
        raise UsageError(f"--currency {command.currency!r} must be an ISO 4217 code such as EUR")
    if isinstance(command, _REASONED) and not command.reason.strip():
        raise UsageError("--reason must say why")
    if isinstance(command, OpenWallet):
        _terms(command)
    checked = read_command(encode(command))  # the worker's own check of ids and lengths
    if isinstance(checked, Rejected):
        raise UsageError(f"not a valid command: {checked.detail}")


def _amount(text: str) -> None:
    try:
        positive_amount(text)
    except Refused as refused:
        raise UsageError(
            f"--amount {text}: the wallet would refuse it, {refused.reason}: {refused.detail} "
            "(an amount must be positive, e.g. 20.00)"
        ) from None


def _currency_code(text: str) -> bool:
    return len(text) == 3 and text.isascii() and text.isupper()


def _terms(command: OpenWallet) -> None:
    """The terms checked by the wallet's own rule (`open_terms`), before anything is sent."""
    try:
        open_terms(command)
    except Refused as refused:
        raise UsageError(f"the wallet would refuse these terms: {refused.detail}") from None


def refuse_file(bad: Sequence[str]) -> None:
    """Stop before anything is sent when any line of an input file is bad: commands move
    money and SIMs, and a half-sent file is harder to fix than a refused one."""
    if bad:
        more = f"\n... and {len(bad) - LISTED} more" if len(bad) > LISTED else ""
        raise InputError("\n".join(bad[:LISTED]) + more + "\nnothing was sent")


def send(
    args: argparse.Namespace, commands: Sequence[Command], source: str, *, bulk: bool = False
) -> int:
    """Send ``commands`` to wallet.commands (or show them, ``--dry-run``) and report: a line
    per delivery for a single call, the summary for a bulk one."""
    if args.dry_run:
        return show(commands, args.json)
    topic = load_topics().wallet_commands
    bar = bulk and hasattr(args, "progress") and progress(args)  # default: on a terminal
    result = publish_commands(commands, topic, bootstrap(args), source, progress=bar)
    if args.json or bulk:
        return report(result, args.json)
    for d in result.deliveries:
        where = f"partition {d.partition} offset {d.offset}" if d.error is None else d.error
        print(f"{d.type} {d.command_id} for wallet {d.wallet_id} -> {result.topic}: {where}")
    return 0 if result.ok else 1


def show(commands: Sequence[Command], as_json: bool) -> int:
    """What a dry run would have sent: each command as sent (JSON lines, the format of
    ``command --input``), or one JSON object; a count by type on stderr."""
    if as_json:
        listed = [msgspec.to_builtins(c) for c in commands]
        print(encode({"dry_run": True, "count": len(commands), "commands": listed}).decode())
    else:
        out = sys.stdout.buffer
        for command in commands:
            out.write(encode(command) + b"\n")
        out.flush()
    kinds = Counter(type(c).__name__ for c in commands)
    counted = ", ".join(f"{n:,} {kind}" for kind, n in kinds.items()) or "no command"
    wallets = len({c.wallet_id for c in commands})
    print(f"dry run: {counted} for {wallets:,} wallet(s); nothing was sent", file=sys.stderr)
    return 0
