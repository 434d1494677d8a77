"""``rating-engine command``: send one wallet command, or a file of them, to wallet.commands.

What a wallet would refuse from the command alone is refused before anything is sent
(`sending.refuse_what_any_wallet_would`)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from ..codec import Rejected
from ..domain import ChangePlan, Command, RedeemVoucher, Tick, TopUp, WriteOffDebt
from ..domain.limits import DEFAULT_LIMITS, time_problem
from ..offline.inputs import read_commands
from ..stream.publisher import derived_command_id
from .args import Subparsers, UsageError, add_bootstrap, add_progress
from .sending import moment, refuse_file, refuse_what_any_wallet_would, send

_DESCRIPTION = (
    "Send one wallet command, or every command of --input, keyed by wallet. --id defaults to "
    "an id derived from the arguments (and --at if given), so retrying the same call is "
    "applied once; pass --id or --at to repeat a top-up on purpose."
)


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "command",
        help="send a wallet command (or a file of them) to Kafka (wallet.commands)",
        description=_DESCRIPTION,
    )
    add_bootstrap(parser)
    parser.add_argument("--input", help="commands, one JSON object per line (instead of ACTION)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--dry-run", action="store_true", help="check and print, send nothing")
    add_progress(parser)
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("--wallet", required=True, help="wallet id")
        sub.add_argument("--id", help="command id (default: derived from the arguments)")
        sub.add_argument("--at", help="when it applies, RFC 3339 with offset (default: now)")
        add_bootstrap(sub, keep_earlier=True)
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        sub.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS)
        return sub

    topup = action("top-up", "credit a wallet")
    topup.add_argument("--amount", required=True, help="decimal amount, e.g. 20.00")
    topup.add_argument("--currency", required=True, help="the wallet's currency, e.g. EUR")
    voucher = action("redeem-voucher", "redeem a voucher code")
    voucher.add_argument("--code", required=True, help="voucher code")
    change = action("change-plan", "move a SIM to another plan")
    change.add_argument("--iccid", required=True, help="the SIM")
    change.add_argument("--plan", required=True, help="the new plan id")
    action("tick", "the clock: expire grants, take recurring charges due at --at")
    off = action("write-off", "forgive debt the wallet owes, with a reason (the only way)")
    off.add_argument("--reason", required=True, help="why (kept on the DebtWrittenOff event)")
    off.add_argument("--amount", help="how much, e.g. 12.50 (default: all of the debt)")


def run(args: argparse.Namespace) -> int:
    if args.input and args.action:
        raise UsageError(f"give either --input or {args.action}, not both")
    if not args.input and not args.action:
        raise UsageError("give a command (top-up, redeem-voucher, change-plan, tick) or --input")
    if args.input:
        return send(args, commands_file(Path(args.input)), args.input, bulk=True)
    return send(args, [command_from_args(args)], "command line")


def command_from_args(args: argparse.Namespace) -> Command:
    """The command the arguments describe, refused (`UsageError`) if the wallet would
    refuse it whatever its state."""
    at = moment(args)
    command_id = args.id or derived_command_id(args.action, _identity(args, at))
    common = {"command_id": command_id, "wallet_id": args.wallet, "at": at}
    command: Command
    match args.action:
        case "top-up":
            command = TopUp(**common, amount=args.amount, currency=args.currency)
        case "redeem-voucher":
            command = RedeemVoucher(**common, code=args.code)
        case "change-plan":
            command = ChangePlan(**common, iccid=args.iccid, plan=args.plan)
        case "write-off":
            command = WriteOffDebt(**common, reason=args.reason, amount=args.amount)
        case _:
            command = Tick(**common)
    refuse_what_any_wallet_would(command)
    return command


def _identity(args: argparse.Namespace, at: datetime) -> dict[str, str | None]:
    """What makes two calls the same command: the arguments, never the clock's reading,
    except for a tick, which is about a moment (ticks at different moments are different
    commands, and a repeated tick is harmless: recurring charges are taken once a cycle)."""
    fields: dict[str, str | None] = {"wallet": args.wallet, "at": args.at}
    match args.action:
        case "top-up":
            return fields | {"amount": args.amount, "currency": args.currency}
        case "redeem-voucher":
            return fields | {"code": args.code}
        case "change-plan":
            return fields | {"iccid": args.iccid, "plan": args.plan}
        case "write-off":
            return fields | {"amount": args.amount, "reason": args.reason}
        case _:
            return fields | {"at": at.isoformat()}


def commands_file(path: Path) -> list[Command]:
    """Every command of a JSON-lines file; any bad line stops the run before anything is sent
    (commands move money: a half-sent file is harder to fix than a rejected one)."""
    commands: list[Command] = []
    bad: list[str] = []
    for item in read_commands(path):
        if isinstance(item, Rejected):
            bad.append(f"{item.origin}: {item.detail}")
        elif (problem := time_problem(DEFAULT_LIMITS, item.at)) is not None:
            bad.append(f"{path}: command {item.command_id}: {problem}")
        else:
            commands.append(item)
    refuse_file(bad)
    return commands
