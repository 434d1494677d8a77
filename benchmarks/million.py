"""A million SIMs over ten thousand wallets: start-up, memory and throughput.

Two ways to provision the same book:

- catalog: a generated catalog file (JSON, which the loader reads without PyYAML's node
  tree) with ``--wallets`` wallets besides the example's four and ``--sims`` subscriptions
  written one by one. Offline, ``rating-engine rate`` with it: its load time (a run of no
  CDR), peak RSS and throughput (a run of ``--cdrs``, less the load). Streamed, one worker
  on it: start-up (process start to ``/readyz`` 200), RSS once ready and after the run,
  and the throughput of ``--cdrs`` published by ``rating-engine publish`` (first publish
  to last decision).
- commands: a worker on the example catalog; the wallets opened by ``OpenWallet`` commands
  (``rating-engine command --input``, built as ``wallet open`` builds them) and the SIMs
  attached by ``rating-engine sim attach --input`` (one CSV). Then the worker restarts:
  start-up with the million SIMs in its state, RSS, and the same CDR run.

Every figure is printed with the load average, and saved to ``results/million.json``.
Usage: ``python benchmarks/million.py [--sims N] [--wallets N] [--cdrs N]
[--skip-commands] [--skip-stream]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from _common import Decision, Outcomes, environment, logger, publish, revision, table
from stream import _interrupt, broker

from engine.local import LocalStack, private_topics

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "catalog.yaml"
PLAN = "iot-eu"
FIRST = 8940_0000_0000_0000_000
AT = "2026-10-01T00:00:00Z"
READY_TIMEOUT = 900.0


log = logger("million")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def iccid(i: int) -> str:
    return f"{FIRST + i:019d}"


def wallet(i: int) -> str:
    return f"w{i:05d}"


# -- inputs ------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    """The example catalog as plain JSON values (YAML's timestamps back to their text)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def write_catalog(path: Path, sims: int, wallets: int) -> None:
    """The example catalog, ``wallets`` more wallets, and ``sims`` subscriptions one by one
    (``active_from`` left out: active since ever), spread evenly over the new wallets."""
    base = _text(yaml.safe_load(EXAMPLE.read_text()))
    base["wallets"] += [
        {
            "id": wallet(w),
            "currency": "EUR",
            "overdraft_limit": "100.00",
            "suspend_at": "-100.00",
            "opening_balance": [{"kind": "top_up", "amount": "1000.00"}],
        }
        for w in range(wallets)
    ]
    base.pop("subscriptions", None)
    base["subscriptions"] = []  # last, so the SIMs are written after it
    head = json.dumps(base)[: -len("]}")]
    with path.open("w") as out:
        out.write(head + "\n")
        for i in range(sims):
            sep = "," if i else ""
            out.write(f'{sep}{{"iccid":"{iccid(i)}","wallet":"{wallet(i % wallets)}"')
            out.write(f',"plan":"{PLAN}"}}\n')
        out.write("]}\n")


def write_cdrs(path: Path, sims: int, count: int) -> None:
    """``count`` data CDRs in Germany in October 2026, on SIMs drawn at random (seed 7)."""
    rng = random.Random(7)
    start = datetime(2026, 10, 2, tzinfo=UTC)
    with path.open("w") as out:
        for n in range(count):
            at = start + timedelta(seconds=n * 17)
            line = {
                "cdr_id": f"m-{n:09d}",
                "iccid": iccid(rng.randrange(sims)),
                "service": "data",
                "started_at": at.isoformat(),
                "volume": rng.randrange(1_000, 2_000_000),
                "mcc": "262",
                "mnc": "01",
                "source": "bench",
            }
            out.write(json.dumps(line, separators=(",", ":")) + "\n")


def write_open_commands(env: dict[str, str], path: Path, wallets: int) -> None:
    """One ``OpenWallet`` per wallet, built by ``wallet open --dry-run`` for the first."""
    argv = ["wallet", "open", "--wallet", wallet(0), "--currency", "EUR", "--at", AT]
    argv += ["--overdraft-limit", "100.00", "--suspend-at", "-100.00", "--dry-run"]
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    template = json.loads(done.stdout.splitlines()[0])
    with path.open("w") as out:
        for w in range(wallets):
            command = {**template, "wallet_id": wallet(w), "command_id": f"open-{wallet(w)}"}
            out.write(json.dumps(command) + "\n")


def write_sims_csv(path: Path, sims: int, wallets: int) -> None:
    with path.open("w") as out:
        out.write("iccid,wallet,plan\n")
        for i in range(sims):
            out.write(f"{iccid(i)},{wallet(i % wallets)},{PLAN}\n")


# -- processes ---------------------------------------------------------------------------


class Peak(threading.Thread):
    """Samples a process's resident memory (``/proc/PID/status``) until it ends."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.rss = 0
        self.hwm = 0

    def run(self) -> None:
        while True:
            found = status_kib(self.pid)
            if found is None:
                return
            self.rss, self.hwm = found[0], max(self.hwm, found[1])
            time.sleep(0.1)


def status_kib(pid: int) -> tuple[int, int] | None:
    """``(VmRSS, VmHWM)`` in KiB, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (KeyError, ValueError):
        return None


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def rate_offline(catalog: Path, cdrs: Path) -> dict[str, Any]:
    """``rate`` with the catalog: seconds and peak RSS of the run."""
    argv = [sys.executable, "-m", "engine.cli", "rate", "--catalog", str(catalog)]
    argv += ["--input", str(cdrs), "--json"]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = Peak(proc.pid)
    peak.start()
    _, err = proc.communicate()
    seconds = time.monotonic() - t0
    peak.join()
    if proc.returncode != 0:
        raise RuntimeError(f"rate exited {proc.returncode}:\n{err.decode()[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": mib(peak.hwm), "load": load()}


def offline(catalog: Path, cdrs: Path, empty: Path, count: int) -> dict[str, Any]:
    log("offline: rate with no CDR (load only)")
    idle = rate_offline(catalog, empty)
    log(f"offline: {idle}; rate with {count:,} CDRs")
    full = rate_offline(catalog, cdrs)
    log(f"offline: {full}")
    rating = full["seconds"] - idle["seconds"]
    return {
        "load_seconds": idle["seconds"],
        "load_peak_rss_mib": idle["peak_rss_mib"],
        "run_seconds": full["seconds"],
        "run_peak_rss_mib": full["peak_rss_mib"],
        "cdrs": count,
        "cdrs_per_second": round(count / rating) if rating > 0 else None,
        "load": full["load"],
    }


def decision_kind(decision: Decision) -> str:
    return "command" if decision.input.startswith("cmd:") else "cdr"


def cli(env: dict[str, str], *argv: str) -> float:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv], env=env, cwd=REPO, capture_output=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"rating-engine {' '.join(argv[:2])}: {done.stderr.decode()[-2000:]}")
    return time.monotonic() - t0


def start(stack: LocalStack, catalog: Path, data: Path) -> tuple[Any, dict[str, Any]]:
    """A worker on ``catalog``: seconds from its start to ``/readyz`` 200, and its RSS."""
    t0 = time.monotonic()
    worker = stack.start_worker(catalog, data, loglevel="warning", metrics=True)
    worker.wait_until(lambda: worker.get("/readyz")[0] == 200, READY_TIMEOUT, every=0.1)
    ready = time.monotonic() - t0
    rss = status_kib(worker.proc.pid) or (0, 0)
    figures = {"startup_seconds": round(ready, 2), "ready_rss_mib": mib(rss[0]), "load": load()}
    log(f"worker ready: {figures}")
    return worker, figures


def cdr_run(
    stack: LocalStack, seen: Outcomes, worker: Any, cdrs: Path, count: int
) -> dict[str, Any]:
    before = seen.kinds["cdr"] + seen.kinds["rejected"]
    t0 = time.monotonic()
    cli(stack.env, "publish", "--input", str(cdrs), "--no-progress")
    last = seen.wait_for(before + count, worker, "cdrs", ("cdr", "rejected"))
    seconds = last - t0
    rss = status_kib(worker.proc.pid) or (0, 0)
    return {
        "cdrs": count,
        "seconds": round(seconds, 2),
        "cdrs_per_second": round(count / seconds),
        "rss_after_mib": mib(rss[0]),
        "peak_rss_mib": mib(rss[1]),
        "load": load(),
    }


def streamed(bootstrap: str, work: Path, catalog: Path, cdrs: Path, count: int) -> dict[str, Any]:
    topics = private_topics(work, f"bench-{uuid.uuid4().hex[:8]}.")
    app_id = LocalStack.fresh_app_id("bench-million")
    with LocalStack(bootstrap, work, topics_file=topics, app_id=app_id, cwd=REPO) as stack:
        seen = Outcomes(bootstrap, stack.topics, decision_kind, "rejected", log)
        seen.start()
        try:
            worker, figures = start(stack, catalog, work / "data")
            figures["run"] = cdr_run(stack, seen, worker, cdrs, count)
            figures["outcomes"] = dict(seen.kinds)
        finally:
            seen.stop()
    return figures


def by_commands(
    bootstrap: str,
    work: Path,
    cdrs: Path,
    sims: int,
    wallets: int,
    count: int,
    times: int = 1,
    worker_env: tuple[str, ...] = (),
) -> dict[str, Any]:
    topics = private_topics(work, f"bench-{uuid.uuid4().hex[:8]}.")
    app_id = LocalStack.fresh_app_id("bench-million")
    opens, csv = work / "open.jsonl", work / "sims.csv"
    write_sims_csv(csv, sims, wallets)
    with LocalStack(bootstrap, work, topics_file=topics, app_id=app_id, cwd=REPO) as stack:
        write_open_commands(stack.env, opens, wallets)
        seen = Outcomes(bootstrap, stack.topics, decision_kind, "rejected", log)
        seen.start()
        try:
            worker, first = start(stack, EXAMPLE, work / "data")
            t0 = time.monotonic()
            cli(stack.env, "command", "--input", str(opens), "--no-progress")
            seen.wait_for(wallets, worker, "open", ("command", "rejected"))
            opened = time.monotonic() - t0
            log(f"commands: {wallets:,} wallets opened in {opened:.1f}s; attaching {sims:,} SIMs")
            t0 = time.monotonic()
            argv = ("sim", "attach", "--input", str(csv), "--at", AT, "--no-progress")
            cli(stack.env, *argv)
            seen.wait_for(wallets + sims, worker, "attach", ("command", "rejected"))
            attached = time.monotonic() - t0
            rss = status_kib(worker.proc.pid) or (0, 0)
            log(f"commands: attached in {attached:.1f}s; restarting the worker")
            for key, value in (setting.split("=", 1) for setting in worker_env):
                stack.env[key] = value
            restarts = []
            for _ in range(max(1, times)):
                stack.stop()
                worker, again = start(stack, EXAMPLE, work / "data")
                again["peak_rss_mib"] = mib((status_kib(worker.proc.pid) or (0, 0))[1])
                restarts.append(again)
            restart = dict(min(restarts, key=lambda r: r["startup_seconds"]))
            restart["restarts"] = restarts
            restart["run"] = cdr_run(stack, seen, worker, cdrs, count)
            restart["outcomes"] = dict(seen.kinds)
        finally:
            seen.stop()
    return {
        "first_startup_seconds": first["startup_seconds"],
        "open_seconds": round(opened, 2),
        "attach_seconds": round(attached, 2),
        "attach_sims_per_second": round(sims / attached),
        "rss_after_attach_mib": mib(rss[0]),
        "restart": restart,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sims", type=int, default=1_000_000)
    parser.add_argument("--wallets", type=int, default=10_000)
    parser.add_argument("--cdrs", type=int, default=20_000, help="CDRs of a worker's run")
    parser.add_argument("--offline-cdrs", type=int, default=200_000, help="CDRs of `rate`")
    parser.add_argument("--skip-stream", action="store_true", help="offline only")
    parser.add_argument("--skip-commands", action="store_true", help="no command provisioning")
    parser.add_argument("--skip-catalog", action="store_true", help="commands only")
    parser.add_argument(
        "--restarts", type=int, default=1, help="restarts after the attach (the fastest counts)"
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the restarted worker (repeatable)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    found: dict[str, Any] = {"sims": args.sims, "wallets": args.wallets, "cdrs": args.cdrs}
    found["load_at_start"] = load()
    with tempfile.TemporaryDirectory(prefix="rating-bench-million-") as tmp:
        work = Path(tmp)
        catalog, cdrs, empty = work / "catalog.json", work / "cdrs.jsonl", work / "none.jsonl"
        many = work / "offline.jsonl"
        t0 = time.monotonic()
        write_catalog(catalog, args.sims, args.wallets)
        write_cdrs(cdrs, args.sims, args.cdrs)
        write_cdrs(many, args.sims, args.offline_cdrs)
        empty.write_text("")
        found["catalog_bytes"] = catalog.stat().st_size
        log(f"inputs written in {time.monotonic() - t0:.1f}s ({found['catalog_bytes']:,} bytes)")
        if not args.skip_catalog:
            found["offline"] = offline(catalog, many, empty, args.offline_cdrs)
        if not args.skip_stream:
            with broker() as bootstrap:
                if not args.skip_catalog:
                    (work / "catalog-run").mkdir()
                    found["catalog"] = streamed(
                        bootstrap, work / "catalog-run", catalog, cdrs, args.cdrs
                    )
                if not args.skip_commands:
                    (work / "commands-run").mkdir()
                    found["commands"] = by_commands(
                        bootstrap,
                        work / "commands-run",
                        cdrs,
                        args.sims,
                        args.wallets,
                        args.cdrs,
                        args.restarts,
                        tuple(args.worker_env),
                    )
    print(table(_rows(found), f"million: {args.sims:,} SIMs over {args.wallets:,} wallets"))
    env = environment()
    env["revision"] = revision()
    publish("million-commands" if args.skip_catalog else "million", found, env)


def _rows(found: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("catalog file (MB)", f"{found['catalog_bytes'] / 1e6:,.1f}")]
    o = found.get("offline")
    if o is not None:
        rows += [
            ("offline: load (s)", f"{o['load_seconds']:.1f}"),
            ("offline: peak RSS (MiB)", f"{o['run_peak_rss_mib']:,.0f}"),
            ("offline: CDRs/s", f"{o['cdrs_per_second'] or 0:,}"),
        ]
    for name in ("catalog", "commands"):
        s = found.get(name)
        if s is None:
            continue
        if name == "commands":
            rows += [
                ("commands: attach (SIMs/s)", f"{s['attach_sims_per_second']:,}"),
                ("commands: RSS after attach (MiB)", f"{s['rss_after_attach_mib']:,.0f}"),
            ]
            s = s["restart"]
        rows += [
            (f"{name}: worker start-up (s)", f"{s['startup_seconds']:.1f}"),
            (f"{name}: worker RSS ready (MiB)", f"{s['ready_rss_mib']:,.0f}"),
            (f"{name}: worker RSS after run (MiB)", f"{s['run']['rss_after_mib']:,.0f}"),
            (f"{name}: worker peak RSS (MiB)", f"{s['run']['peak_rss_mib']:,.0f}"),
            (f"{name}: worker CDRs/s", f"{s['run']['cdrs_per_second']:,}"),
        ]
    rows.append(("load average at the end", " ".join(map(str, load()))))
    return rows


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("million: interrupted; worker and broker stopped", file=sys.stderr)
        sys.exit(130)
