"""``rating-engine``: the command line. Each subcommand parses, calls one module, prints.

A user's mistake (bad arguments, a bad catalog, a missing file) is a message and a non-zero
exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from . import schemas
from .catalog import CatalogError, load_catalog, summarize
from .codec import Rejected, encode, read_command
from .domain import (
    AdjustRating,
    Catalog,
    ChangePlan,
    Command,
    RedeemVoucher,
    Tick,
    TopUp,
    WriteOffDebt,
    parse_money,
)
from .domain.limits import DEFAULT_LIMITS, time_problem
from .offline.generate import GenerateError, generate_cdrs, generate_commands, write_lines
from .offline.inputs import InputError, read_commands
from .offline.run import run_rate
from .projections.clickhouse import ProjectionError
from .secrets import SecretError, password_in_url
from .store import StoreError
from .stream.admin import apply_topics, bootstrap_servers
from .stream.admin import render as render_apply
from .stream.publisher import PublishResult, derived_command_id, publish_cdrs, publish_commands
from .stream.publisher import render as render_publish
from .stream.topics import StreamError, load_topics

if TYPE_CHECKING:
    from .projections.projector import Projector
    from .stream.rejected import RejectedRecord


class UsageError(Exception):
    """A mistake in how the command was called: print it and exit 2."""


def _catalog(path: str) -> Catalog:
    return load_catalog(Path(path))


def cmd_catalog_check(args: argparse.Namespace) -> int:
    catalog = _catalog(args.file)
    if args.json:
        counts = {
            "providers": len(catalog.providers),
            "zones": len(catalog.zones),
            "plans": len(catalog.plans),
            "pools": len(catalog.pools),
            "wallets": len(catalog.wallets),
            "subscriptions": len(catalog.subscriptions),
            "vouchers": len(catalog.vouchers),
        }
        print(encode({"ok": True, "counts": counts}).decode())
    else:
        print(f"{args.file}: ok")
        print(summarize(catalog))
    return 0


def cmd_rate(args: argparse.Namespace) -> int:
    from .store import open_store

    if args.clickhouse and not args.store:
        raise UsageError("--clickhouse needs --store: the projections are made from the store")
    catalog = _catalog(args.catalog)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    store = open_store(args.store) if args.store else None
    try:
        code = run_rate(
            catalog,
            Path(args.input),
            Path(args.commands) if args.commands else None,
            events_out=Path(args.events_out) if args.events_out else None,
            rejected_out=Path(args.rejected_out) if args.rejected_out else None,
            as_json=args.json,
            progress=progress,
            store=store,
        )
        if store is not None and args.clickhouse:
            projector = _projector(args.clickhouse, args.catalog)
            projector.project(store, progress=progress)
    finally:
        if store is not None:
            store.close()
    return code


def cmd_generate(args: argparse.Namespace) -> int:
    catalog = _catalog(args.catalog)
    if args.cdrs < 0:
        raise UsageError("--cdrs must be >= 0")
    out = Path(args.out) if args.out else None
    lines = generate_cdrs(catalog, args.sims, args.cdrs, args.seed, args.days, args.faults)
    count = write_lines(out, lines)
    if args.commands_out:
        n = write_lines(Path(args.commands_out), generate_commands(catalog, args.seed, args.days))
        print(f"wrote {n:,} commands to {args.commands_out}", file=sys.stderr)
    print(f"wrote {count:,} CDRs" + (f" to {out}" if out else ""), file=sys.stderr)
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if args.check:
        stale = schemas.stale(directory)
        if stale:
            print(f"stale schemas in {directory}: {', '.join(stale)}", file=sys.stderr)
            print("regenerate with: rating-engine schemas", file=sys.stderr)
            return 1
        print(f"schemas in {directory} are up to date")
        return 0
    for path in schemas.write(directory):
        print(f"wrote {path}")
    return 0


def _bootstrap(args: argparse.Namespace) -> str:
    return bootstrap_servers(args.bootstrap)


def _retention(ms: int | None) -> str:
    if ms is None:
        return "forever"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def cmd_topics_list(args: argparse.Namespace) -> int:
    topics = load_topics()
    if args.json:
        print(
            encode(
                {
                    "source": topics.source,
                    "replication": topics.replication,
                    "topics": list(topics.all),
                    "changelogs": topics.changelogs,
                }
            ).decode()
        )
        return 0
    width = max(len(spec.name) for spec in topics.all)
    print(f"topics from {topics.source} (replication factor {topics.replication}):")
    for spec in topics.all:
        key = f"{spec.key}{' or none' if spec.key_optional else ''}"
        print(
            f"  {spec.name:<{width}}  {spec.partitions:>3} partitions  key {key:<14}  "
            f"{spec.cleanup:<7}  retention {_retention(spec.retention_ms)}"
        )
        print(f"  {'':<{width}}  {spec.description}")
    print(
        f"changelogs (created by Faust): {topics.changelogs.pattern}, {topics.changelogs.cleanup}"
    )
    return 0


def cmd_topics_apply(args: argparse.Namespace) -> int:
    from .stream.acls import principals

    topics = load_topics()
    who = principals(args.principal or ()) if args.acls else None
    report = apply_topics(topics, _bootstrap(args))
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


def _apply_acls(args: argparse.Namespace, topics: Any, who: dict[str, str]) -> int:
    from .stream.acls import acl_set, apply_acls
    from .stream.acls import render as render_acls

    grants = acl_set(topics, who, args.app_id, args.sink_group)
    report = apply_acls(grants, _bootstrap(args))
    if args.json:
        print(encode({"ok": report.ok, **msgspec.to_builtins(report)}).decode())
    else:
        print(render_acls(report))
    if not report.ok:
        print("rating-engine: some ACLs were not applied", file=sys.stderr)
        return 1
    return 0


def _publish_exit(result: PublishResult, as_json: bool) -> int:
    if as_json:
        print(encode(msgspec.to_builtins(result)).decode())
    else:
        print(render_publish(result))
    if result.interrupted:
        return 130
    return 0 if result.ok else 1


def cmd_publish(args: argparse.Namespace) -> int:
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be a positive number of records per second")
    topics = load_topics()
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    result = publish_cdrs(
        Path(args.input), topics.cdr_raw, _bootstrap(args), rate=args.rate, progress=progress
    )
    return _publish_exit(result, args.json)


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--at {value!r} is not an RFC 3339 time") from None
    if at.tzinfo is None:
        raise UsageError(f"--at {value!r} needs a UTC offset, e.g. 2026-09-01T00:00:00Z")
    problem = time_problem(DEFAULT_LIMITS, at)
    if problem is not None:  # the worker would only reject it (invalid_time)
        raise UsageError(f"--at: {problem}")
    return at


def _positive_amount(text: str) -> None:
    """Refuse an ``--amount`` that is not a positive decimal (as the wallet would)."""
    try:
        amount = parse_money(text)
    except ValueError as exc:
        raise UsageError(f"--amount: {exc}") from None
    if amount <= 0:
        raise UsageError(f"--amount {text} must be positive")


def _command_from_args(args: argparse.Namespace) -> Command:
    given_at = _instant(args.at)
    # The CLI may read the clock (the domain never does); a second is fine enough.
    at = given_at or datetime.now(UTC).replace(microsecond=0)
    fields: dict[str, str | None] = {"wallet": args.wallet, "at": args.at}
    if args.action == "top-up":
        _positive_amount(args.amount)
        if not (len(args.currency) == 3 and args.currency.isascii() and args.currency.isupper()):
            raise UsageError(f"--currency {args.currency!r} must be an ISO 4217 code such as EUR")
        fields |= {"amount": args.amount, "currency": args.currency}
    elif args.action == "redeem-voucher":
        fields |= {"code": args.code}
    elif args.action == "change-plan":
        fields |= {"iccid": args.iccid, "plan": args.plan}
    elif args.action == "write-off":
        if args.amount is not None:
            _positive_amount(args.amount)
        if not args.reason.strip():
            raise UsageError("--reason must say why the debt is written off")
        fields |= {"amount": args.amount, "reason": args.reason}
    else:
        # A tick is about a moment: ticks at different moments are different commands, and a
        # repeated tick is harmless (recurring charges are taken once per cycle).
        fields |= {"at": at.isoformat()}
    command_id = args.id or derived_command_id(args.action, fields)
    common = {"command_id": command_id, "wallet_id": args.wallet, "at": at}
    command: Command
    if args.action == "top-up":
        command = TopUp(**common, amount=args.amount, currency=args.currency)
    elif args.action == "redeem-voucher":
        command = RedeemVoucher(**common, code=args.code)
    elif args.action == "change-plan":
        command = ChangePlan(**common, iccid=args.iccid, plan=args.plan)
    elif args.action == "write-off":
        command = WriteOffDebt(**common, reason=args.reason, amount=args.amount)
    else:
        command = Tick(**common)
    checked = read_command(encode(command))  # the worker's own check of ids and lengths
    if isinstance(checked, Rejected):
        raise UsageError(f"not a valid command: {checked.detail}")
    return command


def _commands_file(path: Path) -> list[Command]:
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
    if bad:
        more = f"\n... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InputError("\n".join(bad[:10]) + more + "\nnothing was sent")
    return commands


def cmd_command(args: argparse.Namespace) -> int:
    if args.input and args.action:
        raise UsageError(f"give either --input or {args.action}, not both")
    if not args.input and not args.action:
        raise UsageError("give a command (top-up, redeem-voucher, change-plan, tick) or --input")
    topics = load_topics()
    if args.input:
        commands, source = _commands_file(Path(args.input)), args.input
    else:
        commands, source = [_command_from_args(args)], "command line"
    result = publish_commands(commands, topics.wallet_commands, _bootstrap(args), source)
    if args.json or args.input:
        return _publish_exit(result, args.json)
    for d in result.deliveries:
        where = f"partition {d.partition} offset {d.offset}" if d.error is None else d.error
        print(f"{d.type} {d.command_id} for wallet {d.wallet_id} -> {result.topic}: {where}")
    return 0 if result.ok else 1


def cmd_worker(args: argparse.Namespace) -> int:
    from .stream.runner import run_worker
    from .stream.settings import WorkerSettings
    from .stream.topics import load_topics

    settings = WorkerSettings.from_env(
        args.catalog,
        bootstrap=args.bootstrap,
        app_id=args.app_id,
        data_dir=args.data_dir,
        tick_interval=args.tick_interval,
        metrics_port=args.metrics_port,
        batch_size=args.batch_size,
        snapshot_every=args.snapshot_every,
        store=args.store,
    )
    return run_worker(settings, _catalog(args.catalog), load_topics(), loglevel=args.loglevel)


def cmd_sink(args: argparse.Namespace) -> int:
    from .stream.health import Health
    from .stream.metrics import SinkMetrics
    from .stream.sink import Sink, SinkSettings, install_signal_handlers, open_store_waiting
    from .stream.topics import load_topics

    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    settings = SinkSettings(
        bootstrap=bootstrap_servers(args.bootstrap),
        group=args.group,
        batch_size=args.batch_size or SinkSettings.batch_size,
        idle_exit=args.idle_exit,
    )
    topics = load_topics()
    metrics, health = SinkMetrics(), Health()
    if args.metrics_port:  # first: alive (and not ready) while it waits for the store
        metrics.serve(args.metrics_port, health)
    store = open_store_waiting(args.store, health, metrics)
    try:
        projection = _projector(args.clickhouse, args.catalog) if args.clickhouse else None
        sink = Sink(settings, topics, store, projection, metrics, health)
        install_signal_handlers(sink)
        progress = sink.run()
    finally:
        store.close()
    print(
        f"{progress.records:,} decision records read, {progress.stored:,} events stored, "
        f"{progress.duplicates:,} already stored; store position {progress.position:,}"
    )
    return 0


def _projector(clickhouse: str, catalog: str | None) -> Projector:
    from .projections.clickhouse import connect
    from .projections.projector import Projector

    return Projector(connect(clickhouse), _catalog(catalog) if catalog else None)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoSettings, run_demo

    if args.cdrs < 1 or args.sims < 1:
        raise UsageError("--cdrs and --sims must be >= 1")
    settings = DemoSettings(
        catalog=Path(args.catalog), out=Path(args.out), sims=args.sims, cdrs=args.cdrs
    )
    return run_demo(settings)


def cmd_query(args: argparse.Namespace) -> int:
    from .projections.clickhouse import connect
    from .projections.query import render_table, run_query

    client = connect(args.clickhouse)
    try:
        answer = run_query(client, args.sql, write=args.write)
    finally:
        client.close()
    if args.json:
        print(encode(answer.records()).decode())
    else:
        print(render_table(answer))
    return 0


def _project(args: argparse.Namespace, rebuild: bool) -> int:
    from .store import open_store

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    projector = _projector(args.clickhouse, args.catalog)
    store = open_store(args.store)
    try:
        if rebuild:
            applied = projector.rebuild(store, progress=progress, direct=args.direct)
        else:
            applied = projector.project(store, progress=progress)
        counts = projector.counts()
        position = projector.position()
    finally:
        store.close()
        projector.client.close()
    rows = ", ".join(f"{table} {n:,}" for table, n in counts.items())
    print(f"{applied:,} events applied; projected up to store position {position:,}")
    print(f"rows: {rows}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    return _project(args, rebuild=False)


def cmd_rebuild(args: argparse.Namespace) -> int:
    return _project(args, rebuild=True)


def cmd_store_verify(args: argparse.Namespace) -> int:
    from .store import anchor, open_store
    from .store.chain import chain_key

    if args.unkeyed_until < 0:
        raise UsageError("--unkeyed-until must be >= 0")
    anchored = None
    if args.anchor:
        try:
            data = Path(args.anchor).read_bytes()
        except OSError as exc:
            raise UsageError(f"--anchor {args.anchor}: {exc.strerror}") from None
        anchored = anchor.load(data, chain_key())
    store = open_store(args.store)
    try:
        problems = store.verify(unkeyed_until=args.unkeyed_until)
        if anchored is not None:
            problems += anchor.check(store, anchored)
        stats = store.stats()
    finally:
        store.close()
    if args.json:
        fields = {"ok": not problems, "events": stats.events, "streams": stats.streams}
        print(encode({**fields, "problems": problems}).decode())
    elif not problems:
        print(f"{stats.events:,} events in {stats.streams:,} streams, intact")
    else:
        print(f"{len(problems):,} problems in {stats.events:,} events, {stats.streams:,} streams:")
        for p in problems:
            where = f"{p.wallet_id} v{p.version}" + (f" ({p.event_id})" if p.event_id else "")
            print(f"  {p.kind:<9}  {where}: {p.detail}")
    return 0 if not problems else 1


def cmd_store_anchor(args: argparse.Namespace) -> int:
    from .store import anchor, open_store
    from .store.chain import chain_key

    store = open_store(args.store)
    try:
        taken = anchor.take(store, chain_key())
    finally:
        store.close()
    data = msgspec.json.format(encode(taken)).decode() + "\n"
    if args.out:
        Path(args.out).write_text(data)
        print(f"anchor of {len(taken.heads):,} streams at position {taken.position:,}: {args.out}")
    else:
        print(data, end="")
    return 0


def cmd_store_stats(args: argparse.Namespace) -> int:
    from .store import open_store

    store = open_store(args.store)
    try:
        stats = store.stats()
    finally:
        store.close()
    if args.json:
        print(encode(stats).decode())
    else:
        for name in ("events", "streams", "inputs", "position"):
            print(f"{name:<9} {getattr(stats, name):>14,}")
    return 0


def _window_bound(flag: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise UsageError(f"{flag} {value!r} needs a UTC offset, e.g. 2026-10-01T00:00:00Z")
    return at


def cmd_replay(args: argparse.Namespace) -> int:
    import hashlib

    from .offline.replay import ReplayError, render, replay
    from .store import open_store

    start, end = _window_bound("--from", args.start), _window_bound("--to", args.end)
    catalog = _catalog(args.catalog)
    path = Path(args.catalog)
    label = f"{path.name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    send = _replay_sender(args) if args.mode == "stream" else None
    if args.mode == "offline" and not args.dry_run:
        _refuse_offline_replay_behind_workers(args)
    store = open_store(args.store)
    try:
        report = replay(
            store,
            catalog,
            start,
            end,
            args.wallet,
            args.dry_run,
            progress=progress,
            label=label,
            send=send,
        )
    except ReplayError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    print(encode(report).decode() if args.json else render(report))
    return 0 if not report.rejected else 1


def _replay_sender(args: argparse.Namespace) -> Callable[[Sequence[AdjustRating]], int]:
    """Publishes a wallet's adjustments to ``wallet.commands``; stops the replay when Kafka
    refuses any (a retried replay sends the same command ids, so nothing repeats)."""
    from .stream.admin import admin_client, cluster_metadata

    bootstrap = _bootstrap(args)
    cluster_metadata(admin_client(bootstrap), bootstrap)  # no broker: say so before re-rating
    topic = load_topics().wallet_commands

    def send(commands: Sequence[AdjustRating]) -> int:
        result = publish_commands(commands, topic, bootstrap, "replay")
        if not result.ok:
            reasons = ", ".join(f"{n} {why}" for why, n in result.errors.items())
            raise StreamError(
                f"Kafka refused {result.failed} of {len(commands)} adjustments ({reasons}); "
                "run the replay again: what was delivered is not sent twice"
            )
        return result.delivered

    return send


def _rejected(args: argparse.Namespace) -> list[RejectedRecord]:
    from .stream.rejected import read_rejected, select

    return list(select(read_rejected(_bootstrap(args), load_topics()), args.reason or ()))


def cmd_rejected_list(args: argparse.Namespace) -> int:
    from .stream.rejected import Tally

    records = _rejected(args)
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


def cmd_rejected_export(args: argparse.Namespace) -> int:
    from .stream.rejected import as_line

    records = _rejected(args)
    written = unreadable = 0
    with Path(args.out).open("wb") as out:
        for record in records:
            original = record.original
            line = None if original is None else as_line(original)
            if line is None:
                unreadable += 1
                continue
            out.write(line + b"\n")
            written += 1
    print(f"wrote {written:,} rejected records to {args.out}", file=sys.stderr)
    if unreadable:
        print(f"{unreadable:,} records skipped: not text, or only a prefix kept", file=sys.stderr)
    return 0


def cmd_rejected_republish(args: argparse.Namespace) -> int:
    """Send each selected record back to the topic it came from (CDRs to cdr.raw, commands
    to wallet.commands); what cannot be sent as it is, is counted and left alone."""
    import tempfile

    from .stream.rejected import as_line

    topics = load_topics()
    cdrs: list[bytes] = []
    commands: list[Command] = []
    left: dict[str, int] = {}
    for record in _rejected(args):
        original = record.original
        line = None if original is None else as_line(original)
        origin = record.origin_topic
        if line is None:
            why = "not text, or only a prefix kept"
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
            result = publish_cdrs(Path(handle.name), topics.cdr_raw, _bootstrap(args))
        result.input = "rejected CDRs"
        print(render_publish(result))
        ok = result.ok
    if commands:
        sent = publish_commands(commands, topics.wallet_commands, _bootstrap(args), "rejected")
        print(f"{sent.delivered:,} commands sent again to {sent.topic}, {sent.failed:,} failed")
        ok = ok and sent.ok
    return 0 if ok else 1


def _refuse_offline_replay_behind_workers(args: argparse.Namespace) -> None:
    """An offline replay appends to the store itself; behind a running worker group that
    would give a wallet a second writer, so it is refused when the group has members."""
    from .stream.admin import BrokerUnavailable, group_members

    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        return  # a deployment without Kafka: the store is the only record
    try:
        members = group_members(bootstrap, args.app_id)
    except BrokerUnavailable:
        print(
            f"rating-engine: warning: no broker at {bootstrap} to check for running workers; "
            "appending offline",
            file=sys.stderr,
        )
        return
    if members:
        raise UsageError(
            f"worker group {args.app_id!r} has {members} running member(s) at {bootstrap}: "
            "an offline replay would append behind the wallets' owners. Use --mode stream "
            "to send the adjustments through them, or stop the workers first"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rating-engine",
        description="Event-sourced rating engine for IoT connectivity wallets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    catalog = sub.add_parser("catalog", help="work with catalog files")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    check = catalog_sub.add_parser("check", help="validate a catalog and summarize it")
    check.add_argument("file", help="catalog YAML file")
    check.add_argument("--json", action="store_true", help="print a JSON result")
    check.set_defaults(func=cmd_catalog_check)

    rate = sub.add_parser("rate", help="rate a CDR file offline (no Kafka) and print a summary")
    rate.add_argument("--catalog", required=True, help="catalog YAML file")
    rate.add_argument("--input", required=True, help="CDRs, one JSON object per line")
    rate.add_argument("--commands", help="commands (top-ups, ticks, ...), one JSON object per line")
    rate.add_argument("--events-out", help="write every event as JSON lines to this file")
    rate.add_argument("--rejected-out", help="write rejected records as JSON lines to this file")
    rate.add_argument("--json", action="store_true", help="print the summary as JSON")
    rate.add_argument(
        "--store", help="also append every event to this event store (sqlite:///PATH, ...)"
    )
    rate.add_argument(
        "--clickhouse", help="then project the store into ClickHouse (chdb:///PATH, http://...)"
    )
    rate.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    rate.set_defaults(func=cmd_rate)

    gen = sub.add_parser("generate", help="write a realistic, deterministic CDR file")
    gen.add_argument("--catalog", default="examples/catalog.yaml", help="catalog YAML file")
    gen.add_argument("--sims", type=int, required=True, help="use the first N SIMs of the catalog")
    gen.add_argument("--cdrs", type=int, required=True, help="number of CDR lines")
    gen.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    gen.add_argument("--days", type=int, default=91, help="days of usage from 2026-09-01")
    gen.add_argument("--faults", type=float, default=0.002, help="share of bad records")
    gen.add_argument("--out", help="output file (default: stdout)")
    gen.add_argument("--commands-out", help="also write ticks, top-ups and vouchers here")
    gen.set_defaults(func=cmd_generate)

    sch = sub.add_parser("schemas", help="write (or --check) the JSON Schemas in schemas/")
    sch.add_argument("--dir", default="schemas", help="directory (default: schemas)")
    sch.add_argument("--check", action="store_true", help="fail if the files are stale")
    sch.set_defaults(func=cmd_schemas)

    bootstrap_help = "Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP, else 127.0.0.1:19092)"
    tpc = sub.add_parser("topics", help="the Kafka topics of topics.yaml ($RATING_TOPICS)")
    tpc_sub = tpc.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    tlist = tpc_sub.add_parser("list", help="print the topics the file describes (no broker)")
    tlist.add_argument("--json", action="store_true", help="print JSON")
    tlist.set_defaults(func=cmd_topics_list)
    tapply = tpc_sub.add_parser(
        "apply", help="create missing topics; fail when an existing one differs"
    )
    tapply.add_argument("--bootstrap", help=bootstrap_help)
    tapply.add_argument("--json", action="store_true", help="print a JSON report")
    tapply.add_argument(
        "--acls", action="store_true", help="then grant each role its ACLs (engine/stream/acls.py)"
    )
    tapply.add_argument(
        "--principal",
        action="append",
        metavar="ROLE=User:NAME",
        help="principal of a role (publisher, operator, worker, sink); default User:rating-ROLE",
    )
    tapply.add_argument("--app-id", default="rating-engine", help="the workers' app id")
    tapply.add_argument("--sink-group", default="rating-engine-sink", help="the sinks' group")
    tapply.set_defaults(func=cmd_topics_apply)

    pub = sub.add_parser("publish", help="send a CDR file to Kafka (cdr.raw), keyed by ICCID")
    pub.add_argument("--input", required=True, help="CDRs, one JSON object per line")
    pub.add_argument("--bootstrap", help=bootstrap_help)
    pub.add_argument("--rate", type=float, help="offer at most N records per second, steadily")
    pub.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    pub.add_argument("--json", action="store_true", help="print the summary as JSON")
    pub.set_defaults(func=cmd_publish)

    cmd = sub.add_parser(
        "command",
        help="send a wallet command (or a file of them) to Kafka (wallet.commands)",
        description="Send one wallet command, or every command of --input, keyed by wallet. "
        "--id defaults to an id derived from the arguments (and --at if given), so retrying "
        "the same call is applied once; pass --id or --at to repeat a top-up on purpose.",
    )
    cmd.add_argument("--bootstrap", help=bootstrap_help)
    cmd.add_argument("--input", help="commands, one JSON object per line (instead of ACTION)")
    cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    cmd.set_defaults(func=cmd_command)
    cmd_sub = cmd.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = cmd_sub.add_parser(name, help=help_text)
        parser.add_argument("--wallet", required=True, help="wallet id")
        parser.add_argument("--id", help="command id (default: derived from the arguments)")
        parser.add_argument("--at", help="when it applies, RFC 3339 with offset (default: now)")
        # Also accepted after the action; SUPPRESS keeps a value given before it.
        parser.add_argument("--bootstrap", default=argparse.SUPPRESS, help=bootstrap_help)
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        return parser

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

    wrk = sub.add_parser(
        "worker",
        help="run the streaming worker (Faust): enrich, rate, clock",
        description="Consume cdr.raw and wallet.commands, rate with the pure core, write "
        "wallet.events, network.actions and cdr.rejected. Stops cleanly on SIGTERM / Ctrl-C.",
    )
    wrk.add_argument("--catalog", required=True, help="catalog YAML file")
    wrk.add_argument("--bootstrap", help=bootstrap_help)
    wrk.add_argument("--app-id", help="Faust app id = consumer group (default rating-engine)")
    wrk.add_argument("--data-dir", help="worker data directory (default .rating-engine)")
    wrk.add_argument(
        "--tick-interval", type=float, help="seconds between clock ticks; 0 disables (default 60)"
    )
    wrk.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    wrk.add_argument("--batch-size", type=int, help="inputs per batch (default 1000)")
    wrk.add_argument(
        "--snapshot-every",
        type=float,
        help="seconds between partition snapshots on wallet.snapshots (default 30; 0: never)",
    )
    wrk.add_argument("--store", help="Faust table store: rocksdb:// (default) or memory://")
    wrk.add_argument("--loglevel", default="warning", help="log level (default warning)")
    wrk.set_defaults(func=cmd_worker)

    snk = sub.add_parser(
        "sink",
        help="store wallet.events in the event store (and project it to ClickHouse)",
        description="Consume wallet.events, append every event to the event store and commit "
        "the offsets only after the write is durable; with --clickhouse, keep the projections "
        "up to date with the store. Several sinks in one --group share the partitions. Stops "
        "cleanly on SIGTERM / Ctrl-C.",
    )
    snk.add_argument(
        "--store", required=True, help="event store URL: sqlite:///PATH or postgresql://..."
    )
    snk.add_argument("--clickhouse", help="projections: chdb:///PATH or http(s)://HOST:PORT")
    snk.add_argument(
        "--catalog", help="catalog YAML: pool allowances and owners for the projections"
    )
    snk.add_argument("--bootstrap", help=bootstrap_help)
    snk.add_argument(
        "--group", default="rating-engine-sink", help="consumer group (default rating-engine-sink)"
    )
    snk.add_argument(
        "--batch-size", type=int, help="most records per store transaction (default 2000)"
    )
    snk.add_argument(
        "--idle-exit",
        type=float,
        default=0.0,
        help="stop after this many idle seconds (default: run until stopped)",
    )
    snk.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    snk.set_defaults(func=cmd_sink)

    demo = sub.add_parser(
        "demo",
        help="the whole system on one machine: broker, worker, sink, CDRs, summary",
        description="Start a local Kafka broker (or use KAFKA_BOOTSTRAP), the topics, a worker "
        "and a sink; publish a generated CDR stream; wait until everything is rated, stored "
        "and projected; print a summary read from ClickHouse; stop what it started.",
    )
    demo.add_argument("--catalog", default="examples/catalog.yaml", help="catalog YAML file")
    demo.add_argument(
        "--out", default="out/demo", help="folder for everything the run makes (emptied first)"
    )
    demo.add_argument("--cdrs", type=int, default=100_000, help="CDRs to generate (default 100000)")
    demo.add_argument("--sims", type=int, default=5000, help="SIMs that send them (default 5000)")
    demo.set_defaults(func=cmd_demo)

    clickhouse_help = "ClickHouse: chdb:///PATH[?database=NAME] or http(s)://USER:PASS@HOST:PORT/DB"
    qry = sub.add_parser(
        "query",
        help="run SQL against the ClickHouse projections and print the answer",
        description="Run one SQL statement against the projections (tables and views in "
        "docs/analytics.md) and print an aligned table, or JSON rows with --json. Read-only "
        "unless --write: one SELECT-like statement, no files, URLs or other servers.",
    )
    qry.add_argument("sql", help="the SQL statement")
    qry.add_argument("--clickhouse", required=True, help=clickhouse_help)
    qry.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    qry.add_argument(
        "--write",
        action="store_true",
        help="allow statements that change data, files or the server (default: read-only)",
    )
    qry.set_defaults(func=cmd_query)

    for name, func, text in (
        ("project", cmd_project, "apply the events stored since the last run to ClickHouse"),
        ("rebuild", cmd_rebuild, "drop the projections and fold the whole event store again"),
    ):
        prj = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        prj.add_argument(
            "--store", required=True, help="event store URL: sqlite:///PATH or postgresql://..."
        )
        prj.add_argument("--clickhouse", required=True, help=clickhouse_help)
        prj.add_argument("--catalog", help="catalog YAML: dimension tables and pool allowances")
        prj.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show a progress bar (default: when stderr is a terminal)",
        )
        if name == "rebuild":
            prj.add_argument(
                "--direct",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="let ClickHouse read the store itself (a SQLite store with embedded "
                "chDB; default: whenever it can), or insert the events from Python",
            )
        prj.set_defaults(func=func)

    rpl = sub.add_parser(
        "replay",
        help="re-rate stored CDRs with another catalog and settle the differences",
        description="Re-run every stored input of each wallet with the catalog --catalog, "
        "compare the CDRs started in [--from, --to) with what was charged for them, and settle "
        "each difference in the paying wallet, now: appended to the store (--mode offline) or "
        "sent to the wallet's owner as an AdjustRating command (--mode stream). History is "
        "never rewritten; running it again adjusts nothing more.",
    )
    rpl.add_argument(
        "--store", required=True, help="event store URL: sqlite:///PATH or postgresql://..."
    )
    rpl.add_argument("--catalog", required=True, help="the new catalog YAML file")
    rpl.add_argument("--from", dest="start", help="only CDRs started at or after (ISO 8601)")
    rpl.add_argument("--to", dest="end", help="only CDRs started before (ISO 8601)")
    rpl.add_argument("--wallet", help="only the CDRs rated in this wallet")
    rpl.add_argument("--dry-run", action="store_true", help="report the impact, append nothing")
    rpl.add_argument(
        "--mode",
        choices=("offline", "stream"),
        default="offline",
        help="offline: decide the adjustments here and append them (no running worker; "
        "refused when --bootstrap or KAFKA_BOOTSTRAP names a broker where the worker group "
        "runs); stream: send them as AdjustRating commands to wallet.commands, for the "
        "wallets' owners to decide and the sink to store (default: offline)",
    )
    rpl.add_argument("--bootstrap", help="Kafka bootstrap servers (default: KAFKA_BOOTSTRAP)")
    rpl.add_argument(
        "--app-id",
        default=os.environ.get("RATING_APP_ID", "rating-engine"),
        help="the workers' group id (default: RATING_APP_ID, else rating-engine)",
    )
    rpl.add_argument("--json", action="store_true", help="print the report as JSON")
    rpl.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    rpl.set_defaults(func=cmd_replay)

    rej = sub.add_parser(
        "rejected",
        help="list, export or send again the records on cdr.rejected",
        description="Every rejected record keeps its original bytes and origin. After fixing "
        "the cause (provisioning a SIM, correcting a record), send the records back to where "
        "they came from with `republish`, or `export` them to a file, edit it, and `publish` "
        "it. Sending a record twice charges nothing twice: a CDR already rated is rejected "
        "as a duplicate.",
    )
    rej_sub = rej.add_subparsers(dest="rejected_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("list", cmd_rejected_list, "count the rejected records by reason and show them"),
        ("export", cmd_rejected_export, "write the original records, one per line, to --out"),
        ("republish", cmd_rejected_republish, "send the records back to their origin topic"),
    ):
        action_parser = rej_sub.add_parser(name, help=text, description=text)
        action_parser.add_argument("--bootstrap", help=bootstrap_help)
        action_parser.add_argument(
            "--reason", action="append", help="only this reason (repeatable), e.g. unknown_sim"
        )
        action_parser.set_defaults(func=func)
        if name == "list":
            action_parser.add_argument("--json", action="store_true", help="print JSON")
            action_parser.add_argument("--limit", type=int, default=20, help="records shown")
        elif name == "export":
            action_parser.add_argument("--out", required=True, help="the JSON Lines file")
        else:
            action_parser.add_argument(
                "--dry-run", action="store_true", help="count what would be sent, send nothing"
            )

    sto = sub.add_parser("store", help="inspect the event store")
    sto_sub = sto.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("verify", cmd_store_verify, "walk every stream's hash chain; exit 1 if anything is off"),
        ("stats", cmd_store_stats, "count events, streams and inputs; print the last position"),
    ):
        action_parser = sto_sub.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + "."
        )
        action_parser.add_argument(
            "--store", required=True, help="event store URL: sqlite:///PATH or postgresql://..."
        )
        action_parser.add_argument("--json", action="store_true", help="print JSON")
        if name == "verify":
            action_parser.add_argument(
                "--unkeyed-until",
                type=int,
                default=0,
                metavar="POSITION",
                help="with a chain key: accept unkeyed hashes up to this position (the events "
                "stored before the key was set); default 0",
            )
            action_parser.add_argument(
                "--anchor",
                metavar="FILE",
                help="also check that every stream head of this anchor (store anchor) is there",
            )
        action_parser.set_defaults(func=func)
    anc = sto_sub.add_parser(
        "anchor",
        help="print each stream's head (version, hash), to keep outside the store",
        description="Print each stream's head (version and hash), with an HMAC when a chain "
        "key is set. Keep it outside the store; store verify --anchor FILE later finds "
        "anchored events deleted or rewritten.",
    )
    anc.add_argument(
        "--store", required=True, help="event store URL: sqlite:///PATH or postgresql://..."
    )
    anc.add_argument("--out", help="write the anchor to this file (default: print it)")
    anc.set_defaults(func=cmd_store_anchor)
    return parser


# URL flags that may name a server; a password in them would be in every process list.
_SECRET_VARIABLES = {
    "store": "RATING_EVENT_STORE_PASSWORD_FILE (or RATING_EVENT_STORE_PASSWORD, PGPASSFILE)",
    "clickhouse": "RATING_CLICKHOUSE_PASSWORD_FILE (or RATING_CLICKHOUSE_PASSWORD)",
}


def _refuse_passwords_in_argv(args: argparse.Namespace) -> None:
    for name, variables in _SECRET_VARIABLES.items():
        value = getattr(args, name, None)
        if isinstance(value, str) and password_in_url(value):
            raise UsageError(
                f"--{name}: the URL carries a password, which every user of this machine "
                f"can read in the process list; leave it out of the URL and give it "
                f"through {variables}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _refuse_passwords_in_argv(args)
        return func(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"rating-engine: error: {exc}", file=sys.stderr)
        return 2
    except (CatalogError, InputError, GenerateError, StreamError, SecretError) as exc:
        print(f"rating-engine: {exc}", file=sys.stderr)
        return 1
    except msgspec.MsgspecError as exc:
        print(f"rating-engine: {exc}", file=sys.stderr)
        return 1
    except ProjectionError as exc:
        print(f"rating-engine: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"rating-engine: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rating-engine: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
