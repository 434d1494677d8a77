"""``rating-engine catalog check``: validate a catalog file and summarize it."""

from __future__ import annotations

import argparse

from ..catalog import summarize
from ..codec import encode
from .args import Subparsers, add_json, catalog


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("catalog", help="work with catalog files")
    actions = parser.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a catalog and summarize it")
    check.add_argument("file", help="catalog YAML file")
    add_json(check, "print a JSON result")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    loaded = catalog(args.file)
    if not args.json:
        print(f"{args.file}: ok")
        print(summarize(loaded))
        return 0
    counts = {
        "providers": len(loaded.providers),
        "zones": len(loaded.zones),
        "plans": len(loaded.plans),
        "pools": len(loaded.pools),
        "wallets": len(loaded.wallets),
        "subscriptions": len(loaded.subscriptions),
        "vouchers": len(loaded.vouchers),
    }
    print(encode({"ok": True, "counts": counts}).decode())
    return 0
