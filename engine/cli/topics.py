"""``rating-engine topics list|apply``: the Kafka topics of topics.yaml, read or created
(and, with --acls, each role's grants)."""

from __future__ import annotations

import argparse
import sys

import msgspec

from ..codec import encode
from ..stream.admin import apply_topics
from ..stream.admin import render as render_apply
from ..stream.topics import Topics, load_topics
from .args import Subparsers, add_bootstrap, add_json, bootstrap


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("topics", help="the Kafka topics of topics.yaml ($RATING_TOPICS)")
    actions = parser.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print the topics the file describes (no broker)")
    add_json(listing)
    listing.set_defaults(func=run_list)
    apply = actions.add_parser(
        "apply", help="create missing topics; fail when an existing one differs"
    )
    add_bootstrap(apply)
    add_json(apply, "print a JSON report")
    apply.add_argument(
        "--acls", action="store_true", help="then grant each role its ACLs (engine/stream/acls.py)"
    )
    apply.add_argument(
        "--principal",
        action="append",
        metavar="ROLE=User:NAME",
        help="principal of a role (publisher, operator, worker, sink); default User:rating-ROLE",
    )
    apply.add_argument("--app-id", default="rating-engine", help="the workers' app id")
    apply.add_argument("--sink-group", default="rating-engine-sink", help="the sinks' group")
    apply.set_defaults(func=run_apply)


def retention(ms: int | None) -> str:
    """A retention in the largest unit that divides it exactly."""
    if ms is None:
        return "forever"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def run_list(args: argparse.Namespace) -> int:
    topics = load_topics()
    if args.json:
        fields = {
            "source": topics.source,
            "replication": topics.replication,
            "topics": list(topics.all),
            "changelogs": topics.changelogs,
        }
        print(encode(fields).decode())
        return 0
    width = max(len(spec.name) for spec in topics.all)
    print(f"topics from {topics.source} (replication factor {topics.replication}):")
    for spec in topics.all:
        key = f"{spec.key}{' or none' if spec.key_optional else ''}"
        print(
            f"  {spec.name:<{width}}  {spec.partitions:>3} partitions  key {key:<14}  "
            f"{spec.cleanup:<7}  retention {retention(spec.retention_ms)}"
        )
        print(f"  {'':<{width}}  {spec.description}")
    print(
        f"changelogs (created by Faust): {topics.changelogs.pattern}, {topics.changelogs.cleanup}"
    )
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from ..stream.acls import principals

    topics = load_topics()
    who = principals(args.principal or ()) if args.acls else None
    report = apply_topics(topics, bootstrap(args))
    if who is not None and report.ok:
        return _apply_acls(args, topics, who)
    if args.json:
        fields = msgspec.to_builtins(report)
        print(encode({"ok": report.ok, "changed": report.changed, **fields}).decode())
    else:
        print(render_apply(report))
    if not report.ok:
        print("rating-engine: the broker's topics differ from topics.yaml", file=sys.stderr)
        return 1
    return 0


def _apply_acls(args: argparse.Namespace, topics: Topics, who: dict[str, str]) -> int:
    from ..stream.acls import acl_set, apply_acls
    from ..stream.acls import render as render_acls

    report = apply_acls(acl_set(topics, who, args.app_id, args.sink_group), bootstrap(args))
    if args.json:
        print(encode({"ok": report.ok, **msgspec.to_builtins(report)}).decode())
    else:
        print(render_acls(report))
    if not report.ok:
        print("rating-engine: some ACLs were not applied", file=sys.stderr)
        return 1
    return 0
