"""``rating-engine sim attach|detach|move|change-plan``: SIM provisioning as commands to the
wallets' owners, for one SIM (``--iccid``), an ICCID range (``--range``) or a file
(``--input``, one SIM a row).

Every SIM of a call becomes its own command (a move: a ``DetachSim`` to the old wallet, then
an ``AttachSim`` to the new one, at the same instant), each with an id derived from what it
asks, so sending the same call or file again is applied once. All of them are built and
checked before the first is sent."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..domain import AttachSim, ChangePlan, Command, DetachSim
from ..stream.publisher import derived_command_id
from .args import Subparsers, UsageError
from .sending import add_sending, moment, refuse_file, refuse_what_any_wallet_would, send
from .sim_rows import MAX_RANGE, Row, Value, iccid_range, read_rows

_DESCRIPTION = (
    "Attach, detach, move SIMs or change their plan, by commands on wallet.commands keyed by "
    "wallet. The SIMs: --iccid, --range FIRST-LAST (inclusive, numeric ICCIDs of one length, "
    f"at most {MAX_RANGE:,}), or --input FILE (CSV with a header, or JSON Lines; one SIM a row, "
    "columns named as the flags: iccid, wallet, from, to, plan, pool, addons, at). Flags give "
    "the value of a column a file leaves out. Ids are derived from each SIM's arguments, so a "
    "retried call is applied once."
)

COLUMNS: dict[str, dict[str, bool]] = {
    # verb -> column -> required
    "attach": {"iccid": True, "wallet": True, "plan": True, "pool": False, "addons": False},
    "detach": {"iccid": True, "wallet": True},
    "move": {
        "iccid": True,
        "from": True,
        "to": True,
        "plan": True,
        "pool": False,
        "addons": False,
    },
    "change-plan": {"iccid": True, "wallet": True, "plan": True},
}
"""Every column may also be ``at`` (RFC 3339), the row's own instant."""


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "sim", help="attach, detach, move SIMs or change their plan", description=_DESCRIPTION
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=_DESCRIPTION)
        which = sub.add_mutually_exclusive_group(required=True)
        which.add_argument("--iccid", help="one SIM")
        which.add_argument("--range", metavar="FIRST-LAST", help="every ICCID from FIRST to LAST")
        which.add_argument("--input", metavar="FILE", help="one SIM a row: CSV or JSON Lines")
        add_sending(sub, bulk=True)
        sub.set_defaults(func=run)
        return sub

    def plan(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--plan", help="plan id")
        sub.add_argument("--pool", help="pool id (a pool of the wallet)")
        sub.add_argument(
            "--addon", dest="addons", action="append", help="add-on id (repeat for more)"
        )

    attach = verb("attach", "attach SIMs to a wallet, on a plan (and pool, add-ons)")
    attach.add_argument("--wallet", help="wallet id")
    plan(attach)
    detach = verb("detach", "take SIMs out of their wallet")
    detach.add_argument("--wallet", help="wallet id")
    move = verb("move", "move SIMs to another wallet: detach from one, attach to the other")
    move.add_argument("--from", dest="from_wallet", metavar="WALLET", help="the SIMs' wallet")
    move.add_argument("--to", dest="to_wallet", metavar="WALLET", help="the new wallet")
    plan(move)
    change = verb("change-plan", "put SIMs on another plan")
    change.add_argument("--wallet", help="wallet id")
    change.add_argument("--plan", help="the new plan id")


def run(args: argparse.Namespace) -> int:
    commands = commands_from_args(args)
    bulk = args.iccid is None
    source = args.input or (f"--range {args.range}" if args.range else "command line")
    return send(args, commands, source, bulk=bulk)


def commands_from_args(args: argparse.Namespace) -> list[Command]:
    """Every command the call asks for, in order; each checked as the wallet would."""
    columns = COLUMNS[args.verb]
    given = _flags(args, columns)
    if args.id is not None and args.iccid is None:
        raise UsageError("--id names one command: give it with --iccid (ranges and files get ids)")
    at = moment(args)
    if args.input is None:
        iccids = [args.iccid] if args.iccid is not None else iccid_range(args.range)
        origin = "command line" if args.range is None else f"--range {args.range}"
        rows = [Row(origin, {**given, "iccid": iccid}) for iccid in iccids]
        needed = [n for n, required in columns.items() if required and n != "iccid"]
        missing = [f"--{name}" for name in needed if not given.get(name)]
        if missing:
            raise UsageError(f"sim {args.verb} needs {', '.join(missing)}")
        return [c for row in rows for c in _commands(args, row, at)]
    return _from_file(args, Path(args.input), given, at)


def _flags(args: argparse.Namespace, columns: dict[str, bool]) -> dict[str, Value]:
    """The columns given as flags (a file's rows take them where they leave them out)."""
    values: dict[str, Value] = {
        "wallet": getattr(args, "wallet", None),
        "from": getattr(args, "from_wallet", None),
        "to": getattr(args, "to_wallet", None),
        "plan": getattr(args, "plan", None),
        "pool": getattr(args, "pool", None),
        "addons": tuple(getattr(args, "addons", None) or ()) or None,
    }
    return {name: value for name, value in values.items() if name in columns and value}


def _from_file(
    args: argparse.Namespace, path: Path, given: dict[str, Value], at: datetime
) -> list[Command]:
    columns = {**{n: False for n in COLUMNS[args.verb]}, "at": False}
    rows = read_rows(path, columns)
    required = [n for n, needed in COLUMNS[args.verb].items() if needed]
    commands: list[Command] = []
    bad: list[str] = []
    first_seen: dict[str, str] = {}
    for row in rows:
        fields = {**given, **{k: v for k, v in row.fields.items() if v}}
        missing = [name for name in required if not fields.get(name)]
        iccid = str(fields.get("iccid"))
        if missing:
            bad.append(f"{row.origin}: missing {', '.join(missing)}")
        elif iccid in first_seen:
            bad.append(f"{row.origin}: ICCID {iccid} is also on {first_seen[iccid]}")
        else:
            first_seen[iccid] = row.origin
            try:
                commands.extend(_commands(args, Row(row.origin, fields), at))
            except UsageError as exc:
                bad.append(f"{row.origin}: {exc}")
    refuse_file(bad)
    return commands


def _commands(args: argparse.Namespace, row: Row, default_at: datetime) -> list[Command]:
    """The commands of one SIM's row, checked; ``at`` is the row's own, else ``--at``."""
    fields = row.fields
    at_text = _text(fields.get("at")) or args.at
    at = moment(argparse.Namespace(at=at_text)) if fields.get("at") else default_at
    identity = {k: _text(v) for k, v in fields.items() if k != "at"} | {"at": at_text}

    def made(kind: str, build: Callable[[str], Command]) -> Command:
        command = build(_id(args.id, kind) or derived_command_id(kind, identity))
        refuse_what_any_wallet_would(command)
        return command

    iccid = _need(fields, "iccid")
    addons = fields.get("addons") or ()
    addons = addons if isinstance(addons, tuple) else (addons,)
    pool = _text(fields.get("pool"))
    match args.verb:
        case "attach":
            wallet, plan = _need(fields, "wallet"), _need(fields, "plan")
            return [
                made("attach-sim", lambda i: AttachSim(i, wallet, at, iccid, plan, pool, addons))
            ]
        case "detach":
            wallet = _need(fields, "wallet")
            return [made("detach-sim", lambda i: DetachSim(i, wallet, at, iccid))]
        case "change-plan":
            wallet, plan = _need(fields, "wallet"), _need(fields, "plan")
            return [made("change-plan", lambda i: ChangePlan(i, wallet, at, iccid, plan))]
    old, new, plan = _need(fields, "from"), _need(fields, "to"), _need(fields, "plan")
    return [
        made("move-detach", lambda i: DetachSim(i, old, at, iccid)),
        made("move-attach", lambda i: AttachSim(i, new, at, iccid, plan, pool, addons)),
    ]


def _id(given: str | None, kind: str) -> str | None:
    """``--id`` as the command's id; a move's two commands get it with their part added."""
    if given is None:
        return None
    return f"{given}-{kind.removeprefix('move-')}" if kind.startswith("move-") else given


def _need(fields: dict[str, Value], name: str) -> str:
    value = _text(fields.get(name))
    if not value:
        raise UsageError(f"missing {name}")
    return value


def _text(value: Value) -> str | None:
    if isinstance(value, tuple):
        return ",".join(value)
    return value
