"""``rating-engine catalog check|publish``: validate a catalog file; publish it as the next
catalog revision and tell every wallet to adopt it."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from tqdm import tqdm

from ..catalog import summarize
from ..catalog.stranding import CommandWallet, Stranding, stranding
from ..codec import encode
from ..domain.commands import AdoptCatalog
from ..domain.routing import Routes
from .args import Subparsers, add_bootstrap, add_json, add_progress, bootstrap, catalog, progress

if TYPE_CHECKING:
    from ..stream.topics import Topics

_PUBLISH = (
    "Check FILE, refuse it if it would strand live state (a plan removed while SIMs use it, "
    "a wallet's currency changed, a pool removed while SIMs are in it, a wallet removed while "
    "it has SIMs), publish it to catalog.revisions as the next revision, then send "
    "AdoptCatalog to every wallet of FILE and every wallet opened by command. A FILE equal to "
    "the latest revision publishes nothing."
)
CHUNK = 5_000
"""AdoptCatalog commands handed to one producer run (the progress bar moves per chunk)."""


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("catalog", help="work with catalog files")
    actions = parser.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a catalog and summarize it")
    check.add_argument("file", help="catalog YAML file")
    add_json(check, "print a JSON result")
    check.set_defaults(func=run_check)
    publish = actions.add_parser(
        "publish", help="publish a catalog as the next revision", description=_PUBLISH
    )
    publish.add_argument("file", help="catalog YAML file")
    add_bootstrap(publish)
    publish.add_argument(
        "--dry-run",
        action="store_true",
        help="check, and say what would be published; send nothing",
    )
    add_progress(publish)
    add_json(publish, "print a JSON result")
    publish.set_defaults(func=run_publish)


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


class Published(msgspec.Struct):
    """What ``catalog publish`` did; ``--json`` prints it."""

    file: str
    revision: int
    """The revision FILE is now (or would be, with --dry-run)."""
    digest: str
    status: str
    """``published``, ``unchanged``, ``refused`` or ``dry-run``."""
    problems: list[Stranding] = []
    wallets: int = 0
    """Wallets to tell (AdoptCatalog)."""
    told: int = 0
    failed: int = 0
    errors: dict[str, int] = {}


def run_publish(args: argparse.Namespace) -> int:
    from ..stream import revisions as revs
    from ..stream.topics import load_topics

    path = Path(args.file)
    new = catalog(args.file)  # a catalog error: file, path, problem, as `catalog check`
    text, digest = revs.read_source(path)
    servers, topics = bootstrap(args), load_topics()
    published = revs.read_revisions(servers, topics)
    latest = max(published, default=0)
    routes, opened = read_directory(servers, topics)
    wallets = sorted(set(new.wallets) | set(opened))
    if latest and published[latest].digest == digest:
        # Every wallet is told again, so a fan-out cut short before is completed by a
        # retry; a wallet told twice decides nothing (the ids are derived).
        again = Published(args.file, latest, digest, "unchanged", [], len(wallets))
        if not args.dry_run:
            _tell(again, wallets, topics, servers, progress(args))
        return _report(again, args.json)
    current = published[latest].catalog() if latest else new
    problems = stranding(current, new, routes, opened, int(time.time()))
    result = Published(args.file, latest + 1, digest, "refused", problems, len(wallets))
    if problems:
        return _report(result, args.json)
    if args.dry_run:
        result.status = "dry-run"
        return _report(result, args.json)
    revision = revs.CatalogRevision(latest + 1, digest, path.name, text, revs.now_rfc3339())
    revs.publish_revision(servers, topics, revision)
    result.status = "published"
    _tell(result, wallets, topics, servers, progress(args))
    return _report(result, args.json)


def read_directory(bootstrap: str, topics: Topics) -> tuple[Routes, Mapping[str, CommandWallet]]:
    """The shared SIM-route table and the wallets opened by command, read to their end."""
    from ..stream.directory import read_directory as read_table

    table = read_table(bootstrap, topics)
    return table.routes, table.wallets


def _tell(result: Published, wallets: list[str], topics: Topics, servers: str, show: bool) -> None:
    """AdoptCatalog to each wallet, keyed by wallet; its id makes a resend harmless."""
    from ..stream.publisher import publish_commands

    at = datetime.now(UTC).replace(microsecond=0)
    commands = [
        AdoptCatalog(
            command_id=f"adopt:{result.revision}:{wallet}",
            wallet_id=wallet,
            at=at,
            revision=result.revision,
            digest=result.digest,
        )
        for wallet in wallets
    ]
    bar = tqdm(
        total=len(commands),
        unit=" wallets",
        disable=not show or len(commands) < CHUNK,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:
        for start in range(0, len(commands), CHUNK):
            chunk = commands[start : start + CHUNK]
            sent = publish_commands(chunk, topics.wallet_commands, servers, result.file)
            result.told += sent.delivered
            for why, count in sent.errors.items():
                result.errors[why] = result.errors.get(why, 0) + count
            bar.update(len(chunk))
            if sent.stopped:
                result.errors[sent.stopped] = result.errors.get(sent.stopped, 0) + 1
                break
    result.failed = len(commands) - result.told  # the ones not sent after a stop too


def _report(result: Published, as_json: bool) -> int:
    code = 0 if result.status != "refused" and result.failed == 0 else 1
    if as_json:
        print(encode({"ok": code == 0, **msgspec.to_builtins(result)}).decode())
        return code
    short = result.digest[:12]
    if result.status == "unchanged":
        print(
            f"{result.file}: unchanged: already revision {result.revision} (sha256 {short}); "
            f"{result.told:,} of {result.wallets:,} wallets told again to adopt it"
        )
    elif result.status == "refused":
        print(
            f"rating-engine: {result.file} would strand live state; nothing was published:",
            file=sys.stderr,
        )
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
    elif result.status == "dry-run":
        print(
            f"{result.file}: ok; would be revision {result.revision} (sha256 {short}), "
            f"told to {result.wallets:,} wallets; nothing sent (--dry-run)"
        )
    else:
        print(
            f"{result.file}: published as revision {result.revision} (sha256 {short}); "
            f"AdoptCatalog sent to {result.told:,} of {result.wallets:,} wallets"
        )
        for why, count in result.errors.items():
            print(f"  failed: {count:,} x {why}", file=sys.stderr)
    return code
