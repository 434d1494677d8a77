"""How fast can SIMs be provisioned in bulk? ``sim attach`` through Kafka to one worker.

One worker (example catalog) on private topics of a real broker. First the wallets: with
``--wallets opened`` (the default) ``--open N`` wallets are opened with
``rating-engine wallet open``; with ``--wallets catalog`` the SIMs go to the catalog's four
wallets. Then two bulk runs, each of ``--sims`` SIMs spread evenly over the wallets, each by
the CLI as a user runs it (a subprocess, ``--json``):

- file: ``sim attach --input sims.csv`` (columns iccid, wallet, plan);
- range: ``sim attach --range FIRST-LAST --wallet W --plan P``, one call per wallet.

For each: the CLI's wall time (read, build and check every command, publish), the commands/s
it published (delivered / its publishing seconds), and the time from the CLI's start until
the worker has decided every command: a decision on ``wallet.events`` (read_committed) or a
refusal at admission on ``cdr.rejected``, both counted and shown apart. SIMs/s = SIMs / that
time. Usage: ``python benchmarks/provision.py [--sims N] [--wallets opened|catalog] [--open N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
from _common import Decision, Outcomes, environment, logger, publish, revision, table
from stream import JOIN_TIMEOUT, _interrupt, broker, external

from engine.local import LocalStack, StackError, private_topics, run_command
from engine.stream.admin import admin_client

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "examples" / "catalog.yaml"
CATALOG_WALLETS = ("acme", "globex", "initech", "umbrella")
PLAN = "iot-eu"
AT = "2026-10-01T00:00:00Z"


log = logger("provision")


def command_outcome(decision: Decision) -> str | None:
    """A command's decision, counted by its first event's type; other decisions are not."""
    if not decision.input.startswith("cmd:"):
        return None
    return decision.events[0].type if decision.events else "no event"


def cli(env: dict[str, str], *argv: str) -> tuple[dict[str, Any], float]:
    """``rating-engine ARGV --json``: its JSON summary and its wall time."""
    t0 = time.monotonic()
    out = run_command(
        [sys.executable, "-m", "engine.cli", *argv, "--json"],
        f"rating-engine {' '.join(argv[:3])}",
        error=RuntimeError,
        env=env,
        cwd=REPO,
        keep=2000,
    )
    return msgspec.json.decode(out), time.monotonic() - t0


def iccids(first: int, count: int) -> list[str]:
    return [f"{first + i:019d}" for i in range(count)]


def file_run(
    stack: LocalStack, seen: Outcomes, workdir: Path, wallets: list[str], sims: int
) -> dict[str, Any]:
    path = workdir / "sims.csv"
    with path.open("w") as out:
        out.write("iccid,wallet,plan\n")
        for i, iccid in enumerate(iccids(8931_0000_0000_0000_000, sims)):
            out.write(f"{iccid},{wallets[i % len(wallets)]},{PLAN}\n")
    before = seen.count
    t0 = time.monotonic()
    result, wall = cli(
        stack.env, "sim", "attach", "--input", str(path), "--at", AT, "--no-progress"
    )
    last = seen.wait_for(before + sims, stack.processes[0], "file")
    return _figures(result, wall, last - t0, sims)


def range_run(stack: LocalStack, seen: Outcomes, wallets: list[str], sims: int) -> dict[str, Any]:
    share = sims // len(wallets)
    before = seen.count
    t0 = time.monotonic()
    delivered, publish_seconds, wall = 0, 0.0, 0.0
    for n, wallet in enumerate(wallets):
        first = 8932_0000_0000_0000_000 + n * 10_000_000
        span = f"{first:019d}-{first + share - 1:019d}"
        argv = ("sim", "attach", "--range", span, "--wallet", wallet, "--plan", PLAN, "--at", AT)
        result, seconds = cli(stack.env, *argv, "--no-progress")
        delivered += result["delivered"]
        publish_seconds += result["seconds"]
        wall += seconds
    last = seen.wait_for(before + share * len(wallets), stack.processes[0], "range")
    summary = {"delivered": delivered, "seconds": publish_seconds}
    return _figures(summary, wall, last - t0, share * len(wallets))


def _figures(result: dict[str, Any], wall: float, decided: float, sims: int) -> dict[str, Any]:
    if result["delivered"] != sims:
        raise RuntimeError(f"the CLI delivered {result['delivered']} of {sims} commands")
    return {
        "sims": sims,
        "cli_wall_seconds": round(wall, 2),
        "publish_seconds": round(result["seconds"], 2),
        "published_commands_per_second": round(sims / result["seconds"]),
        "decided_seconds": round(decided, 2),
        "decided_sims_per_second": round(sims / decided),
    }


def open_wallets(stack: LocalStack, count: int) -> list[str]:
    wallets = [f"bench-{i:02d}" for i in range(count)]
    for wallet in wallets:
        cli(
            stack.env,
            "wallet",
            "open",
            "--wallet",
            wallet,
            "--currency",
            "EUR",
            "--at",
            AT,
            "--overdraft-limit",
            "100.00",
            "--suspend-at",
            "-100.00",
        )
    return wallets


def run(bootstrap: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    topics_file = private_topics(workdir, prefix)
    app_id = LocalStack.fresh_app_id("bench-provision")
    with LocalStack(bootstrap, workdir, topics_file=topics_file, app_id=app_id, cwd=REPO) as stack:
        worker = stack.start_worker(
            CATALOG, workdir / "data", loglevel="warning", metrics=True, new_session=True
        )
        partitions = stack.topics.wallet_events.partitions
        try:
            worker.wait_until(
                lambda: (
                    (s := worker.scrape()) is not None
                    and s.get("rating_partitions_owned") == partitions
                ),
                JOIN_TIMEOUT,
            )
        except StackError as exc:
            raise RuntimeError(f"the worker did not start: {exc}") from None
        seen = Outcomes(bootstrap, stack.topics, command_outcome, "refused at admission", log)
        seen.start()
        try:
            wallets = list(CATALOG_WALLETS)
            if args.wallets == "opened":
                wallets = open_wallets(stack, args.open)
                seen.wait_for(len(wallets), worker, "open")
            log(f"file: attaching {args.sims:,} SIMs to {len(wallets)} wallets")
            by_file = file_run(stack, seen, workdir, wallets, args.sims)
            log(f"file: {by_file}")
            by_range = range_run(stack, seen, wallets, args.sims)
            log(f"range: {by_range}")
        finally:
            seen.stop()
        if external():
            _delete(bootstrap, [s.name for s in stack.topics.all], app_id)
    return {"wallets": wallets, "file": by_file, "range": by_range, "outcomes": dict(seen.kinds)}


def _delete(bootstrap: str, names: list[str], app_id: str) -> None:
    admin = admin_client(bootstrap)
    for future in admin.delete_topics(names).values():  # best effort on a shared broker
        with contextlib.suppress(Exception):
            future.result(timeout=30)
    with contextlib.suppress(Exception):
        admin.delete_consumer_groups([app_id])[app_id].result(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--wallets", choices=("opened", "catalog"), default="opened")
    parser.add_argument("--open", type=int, default=8, help="wallets opened (--wallets opened)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = revision()
    with (
        tempfile.TemporaryDirectory(prefix="rating-bench-provision-") as tmp,
        broker() as bootstrap,
    ):
        found = run(bootstrap, Path(tmp), args)
    rows = []
    for name in ("file", "range"):
        r = found[name]
        rows += [
            (f"{name}: published (commands/s)", f"{r['published_commands_per_second']:,}"),
            (f"{name}: CLI wall time (s)", f"{r['cli_wall_seconds']:.1f}"),
            (f"{name}: all decided (s)", f"{r['decided_seconds']:.1f}"),
            (f"{name}: decided (SIMs/s)", f"{r['decided_sims_per_second']:,}"),
        ]
    rows += [(f"outcome: {kind}", f"{n:,}") for kind, n in sorted(found["outcomes"].items())]
    wallets = f"{len(found['wallets'])} {args.wallets} wallets"
    title = f"provision: {args.sims:,} SIMs x 2 (file, range), {wallets}, 1 worker"
    print(table(rows, title))
    refused = found["outcomes"].get("refused at admission", 0)
    if refused:
        print(
            f"NOTE: {refused:,} commands were refused at admission (no such wallet?): the "
            "figures time refusals, not attachments"
        )
    env = environment()
    env["broker"] = "KAFKA_BOOTSTRAP" if external() else "LocalJarBroker"
    env["revision"] = started_at
    publish(
        f"provision-{args.wallets}", {"sims": args.sims, "wallets_kind": args.wallets, **found}, env
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("provision: interrupted; worker and broker stopped", file=sys.stderr)
        sys.exit(130)
