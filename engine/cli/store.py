"""``rating-engine store verify|stats|anchor|revisions|snapshot``: the event store's hash
chains, counts, heads and catalog revisions, read without changing anything; and wallet
snapshots (derived from the events), written so replay folds little."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec

from ..codec import encode
from ..store import Problem, StoreStats, anchor, snapshots
from ..store.chain import chain_key
from .args import Subparsers, UsageError, add_json, add_store
from .resources import opened_store

_ANCHOR = (
    "Print each stream's head (version and hash), with an HMAC when a chain key is set. Keep "
    "it outside the store; store verify --anchor FILE later finds anchored events deleted or "
    "rewritten."
)


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("store", help="inspect the event store")
    actions = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("verify", run_verify, "walk every stream's hash chain; exit 1 if anything is off"),
        ("stats", run_stats, "count events, streams and inputs; print the last position"),
    ):
        action = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_store(action)
        add_json(action)
        if name == "verify":
            action.add_argument(
                "--unkeyed-until",
                type=int,
                default=0,
                metavar="POSITION",
                help="with a chain key: accept unkeyed hashes up to this position (the events "
                "stored before the key was set); default 0",
            )
            action.add_argument(
                "--anchor",
                metavar="FILE",
                help="also check that every stream head of this anchor (store anchor) is there",
            )
        action.set_defaults(func=func)
    heads = actions.add_parser(
        "anchor",
        help="print each stream's head (version, hash), to keep outside the store",
        description=_ANCHOR,
    )
    add_store(heads)
    heads.add_argument("--out", help="write the anchor to this file (default: print it)")
    heads.set_defaults(func=run_anchor)
    kept = actions.add_parser(
        "revisions",
        help="list the catalog revisions kept in the store (or print one's source)",
        description="List every catalog revision the sink kept: number, when it was "
        "published, its file name and sha256. --source N prints revision N's YAML as published.",
    )
    add_store(kept)
    add_json(kept, "print JSON (the sources too)")
    kept.add_argument("--source", type=int, metavar="N", help="print revision N's catalog YAML")
    kept.set_defaults(func=run_revisions)
    snap = actions.add_parser(
        "snapshot",
        help="snapshot every wallet with events since its last snapshot (replay starts there)",
        description="Write each wallet's state as of the store's current position (folded "
        "from its previous snapshot and the events after it), so that replay and the payers' "
        "states start there instead of folding the wallet's whole history.",
    )
    add_store(snap)
    add_json(snap)
    snap.set_defaults(func=run_snapshot)


def run_verify(args: argparse.Namespace) -> int:
    if args.unkeyed_until < 0:
        raise UsageError("--unkeyed-until must be >= 0")
    anchored = None
    if args.anchor:
        try:
            data = Path(args.anchor).read_bytes()
        except OSError as exc:
            raise UsageError(f"--anchor {args.anchor}: {exc.strerror}") from None
        anchored = anchor.load(data, chain_key())
    with opened_store(args.store) as store:
        problems = store.verify(unkeyed_until=args.unkeyed_until)
        if anchored is not None:
            problems += anchor.check(store, anchored)
        stats = store.stats()
    if args.json:
        fields = {"ok": not problems, "events": stats.events, "streams": stats.streams}
        print(encode({**fields, "problems": problems}).decode())
    else:
        print(_verdict(problems, stats))
    return 0 if not problems else 1


def _verdict(problems: list[Problem], stats: StoreStats) -> str:
    if not problems:
        return f"{stats.events:,} events in {stats.streams:,} streams, intact"
    lines = [f"{len(problems):,} problems in {stats.events:,} events, {stats.streams:,} streams:"]
    for p in problems:
        where = f"{p.wallet_id} v{p.version}" + (f" ({p.event_id})" if p.event_id else "")
        lines.append(f"  {p.kind:<9}  {where}: {p.detail}")
    return "\n".join(lines)


def run_anchor(args: argparse.Namespace) -> int:
    with opened_store(args.store) as store:
        taken = anchor.take(store, chain_key())
    data = msgspec.json.format(encode(taken)).decode() + "\n"
    if args.out:
        Path(args.out).write_text(data)
        print(f"anchor of {len(taken.heads):,} streams at position {taken.position:,}: {args.out}")
    else:
        print(data, end="")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    with opened_store(args.store) as store:
        stats = store.stats()
    if args.json:
        print(encode(stats).decode())
    else:
        for name in ("events", "streams", "inputs", "position"):
            print(f"{name:<9} {getattr(stats, name):>14,}")
    return 0


def run_revisions(args: argparse.Namespace) -> int:
    with opened_store(args.store) as store:
        kept = store.revisions()
    if args.source is not None:
        found = [r for r in kept if r.revision == args.source]
        if not found:
            raise UsageError(f"--source {args.source}: no such revision in the store")
        print(found[0].source, end="")
        return 0
    if args.json:
        print(encode(kept).decode())
        return 0
    if not kept:
        print("no catalog revisions stored")
    for r in kept:
        print(f"{r.revision:>6}  {r.published_at}  {r.digest[:12]}  {r.name}")
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    with opened_store(args.store) as store:
        taken = snapshots.take(store)
    if args.json:
        print(encode(taken).decode())
    else:
        print(
            f"{taken.written:,} wallet snapshots at position {taken.position:,} "
            f"({taken.folded:,} events folded)"
        )
    return 0
