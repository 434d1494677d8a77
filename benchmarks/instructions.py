"""How many machine instructions does the core take per CDR, and the floor per line?

``rate_core`` compares the core with the floor by time, on the same lines in the same
process, so that a slower machine moves both. It does not move them alike: on a day when
this shared machine is slow the floor loses a third and the core, whose working set is
many times larger, loses more (the same core code measured 0.076 of the floor one day and
0.041 on another). An instruction count does not depend on the day. valgrind's cachegrind
counts every instruction the process runs; each count here is the difference between two
runs of this script under it, one with the loop and one without (the same start-up, lines
and imports), divided by the lines. ``PYTHONHASHSEED`` is fixed, and both runs of a pair
have the same command line and environment (only ``BENCH_LOOP``'s value differs), so a pair
gives the same count again, to a few instructions per CDR. Where the interpreter's objects
lie in memory still counts: one more command-line argument moved the floor's count by 0.8%
(hash tables keyed by objects' addresses, the allocator's pools), so two versions of the
code are told apart to about a percent, not better, whatever the day. Cachegrind also
simulates the first-level caches: the misses per CDR say why the core suffers more than the
floor from a busy machine.

The core's loop is ``rate_core``'s whole path (decode, route, decide+evolve, encode); the
floor's is ``floor.py``'s. A third loop counts the rate agent's path in process, as
``rate_core`` times it (``agent_path``: the worker's ``Rater`` answering the CDRs as enrich
groups them, without Kafka): what a worker's event loop spends per CDR besides its clients.
Usage: ``python benchmarks/instructions.py [--cdrs N]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from _common import environment, publish, table

HERE = Path(__file__).resolve()
LOOPS = ("core", "floor", "agent")
COUNTS = {"I   refs": "instructions", "I1  misses": "i1_misses", "D1  misses": "d1_misses"}
"""The lines of cachegrind's summary read, and the names given to their counts."""
LOOP_VARIABLE = "BENCH_LOOP"
"""``1``: the child runs its loop; ``0``: the set-up alone. An environment variable rather
than an argument, so that both runs of a pair lay out their memory alike."""


def parse(summary: str) -> dict[str, int]:
    """The counts of cachegrind's summary (its stderr): ``==12== I   refs:  3,612,692``."""
    found = {}
    for label, name in COUNTS.items():
        match = re.search(rf"{re.escape(label)}:\s+([0-9,]+)", summary)
        if match is None:
            raise ValueError(f"cachegrind printed no {label.strip()!r} line")
        found[name] = int(match.group(1).replace(",", ""))
    return found


def counted(loop: str, run: bool, cdrs: int, seed: int) -> dict[str, int]:
    """The counts of one run of this script's ``loop`` (or of its set-up alone) under
    cachegrind, with a fixed hash seed, no bytecode written, the caller's ``PATH`` and
    ``PYTHONPATH`` (which code is counted) and nothing else of the caller's environment."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=yes",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(HERE),
        "--child",
        loop,
        "--cdrs",
        str(cdrs),
        "--seed",
        str(seed),
    ]
    done = subprocess.run(
        command, env=child_env(run), cwd=HERE.parent, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"instructions: the {loop} run under valgrind failed:\n{tail}")
    return parse(done.stderr)


def child_env(run: bool) -> dict[str, str]:
    """The whole environment of a counted run: the two runs of a pair differ only in
    ``BENCH_LOOP``."""
    # No bytecode written: a first run that wrote the .pyc files the second then reads would
    # take their compiling out of the difference (it once made the core's count 27% low).
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env[LOOP_VARIABLE] = "1" if run else "0"
    return env


def per_line(loop: str, cdrs: int, seed: int) -> dict[str, float]:
    """Each count of ``loop`` per line: the run with the loop less the run without."""
    base = counted(loop, False, cdrs, seed)
    full = counted(loop, True, cdrs, seed)
    return {name: (full[name] - base[name]) / cdrs for name in COUNTS.values()}


def child(loop: str, cdrs: int, seed: int) -> None:
    """Under valgrind: the lines, then ``loop`` over them unless ``BENCH_LOOP`` is ``0``."""
    from floor import floor_loop, wallets_by_iccid
    from rate_core import CATALOG, agent_path, whole_path

    from engine.catalog import load_catalog
    from engine.offline.generate import generate_cdrs

    catalog = load_catalog(CATALOG)
    lines = list(generate_cdrs(catalog, 5_000, cdrs, seed, faults=0.0))
    wallets = wallets_by_iccid(catalog, lines)
    agent = agent_path(catalog, lines) if loop == "agent" else None
    if os.environ.get(LOOP_VARIABLE) == "0":
        return
    if loop == "core":
        whole_path(catalog, lines)
    elif agent is not None:
        agent()
    else:
        floor_loop(lines, wallets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", choices=LOOPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cdrs <= 0:
        parser.error("--cdrs must be positive")
    if args.child:
        child(args.child, args.cdrs, args.seed)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("instructions: valgrind is not installed (make setup installs it)")

    core = per_line("core", args.cdrs, args.seed)
    floor = per_line("floor", args.cdrs, args.seed)
    agent = per_line("agent", args.cdrs, args.seed)
    ratio = floor["instructions"] / core["instructions"]
    rows = [
        ("core: instructions per CDR", f"{core['instructions']:,.0f}"),
        ("floor: instructions per line", f"{floor['instructions']:,.0f}"),
        ("ratio to the floor, by instructions", f"{ratio:.3f}"),
        ("rate agent's path in process: instructions per CDR", f"{agent['instructions']:,.0f}"),
        ("core: L1 misses per CDR, instruction / data", _misses(core)),
        ("floor: L1 misses per line, instruction / data", _misses(floor)),
    ]
    print(table(rows, f"instructions: {args.cdrs:,} CDRs, cachegrind"))
    env = environment()
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    env["valgrind"] = version.stdout.strip()
    publish(
        "instructions",
        {
            "cdrs": args.cdrs,
            "core_per_cdr": {k: round(v) for k, v in core.items()},
            "floor_per_line": {k: round(v) for k, v in floor.items()},
            "agent_per_cdr": {k: round(v) for k, v in agent.items()},
            "ratio_to_floor": round(ratio, 4),
        },
        env,
    )


def _misses(counts: dict[str, float]) -> str:
    return f"{counts['i1_misses']:,.0f} / {counts['d1_misses']:,.0f}"


if __name__ == "__main__":
    main()
