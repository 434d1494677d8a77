"""What published catalog revisions cost a worker in memory, at a million SIMs.

The worker's live table of catalogs (``engine/stream/live_catalogs.py``) keeps every
revision's record (its source text) but builds only the newest and those a wallet of the
worker is on. Each case runs in a fresh process and reports its resident memory (RSS) once
the table is fed ``--revisions`` revisions of the same generated catalog (the million
benchmark's, each a few bytes apart so each has its own digest):

- ``records``: the records as decoded from the topic, with their sources, nothing built;
- ``newest``: the records as a worker reads them at start, one batch: only the newest built;
- ``every``: each record built as it arrives and none let go of (every revision in use);
- ``let go``: each record built as it arrives, and after each the older catalogs let go of
  (``retain``: every wallet moved onto the newest, as ``catalog publish`` asks), so what
  one revision freed is reused by the next one's build.

Usage: ``python benchmarks/catalog_memory.py [--sims N] [--revisions N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import environment, logger, save, table
from million import mib, status_kib, write_catalog

CASES = ("records", "newest", "every", "let go")
log = logger("catalog_memory")


def measure(case: str, path: Path, revisions: int) -> dict[str, Any]:
    """One case, in this process (a fresh one: see ``main``)."""
    from engine.stream.live_catalogs import CatalogRevisions
    from engine.stream.memory import cap_arenas, release_free_memory
    from engine.stream.revisions import CatalogRevision, digest_of
    from engine.stream.topics import load_topics

    cap_arenas()
    text = path.read_text()
    records = []
    for n in range(1, revisions + 1):
        source = text + " " * n  # trailing blanks: the same catalog, another digest
        digest = digest_of(source.encode())
        records.append(CatalogRevision(n, digest, path.name, source, "2026-12-01T00:00:00Z"))
    del text
    table_ = CatalogRevisions("127.0.0.1:1", load_topics())
    started = time.perf_counter()
    if case == "newest":
        table_.add(*records)
    elif case in ("every", "let go"):
        for record in records:
            table_.add(record)
            if case == "let go":
                table_.retain([])
                gc.collect()
    if case != "records":
        del records  # what remains is what the table holds
    gc.collect()
    release_free_memory()
    rss_kib, _peak = status_kib(os.getpid()) or (0, 0)
    return {
        "built": table_.built,
        "seconds": time.perf_counter() - started,
        "rss_mib": mib(rss_kib),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sims", type=int, default=1_000_000)
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--revisions", type=int, default=4)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:  # the child process of one case
        print(json.dumps(measure(args.case, args.catalog, args.revisions)))
        return

    with tempfile.TemporaryDirectory(prefix="rating-bench-catalogs-") as work:
        path = Path(work) / "catalog.json"
        log(f"writing a catalog of {args.sims:,} SIMs")
        write_catalog(path, args.sims, args.wallets)
        results = {}
        for case in CASES:
            log(f"{case}: {args.revisions} revisions")
            argv = [sys.executable, __file__, "--case", case, "--catalog", str(path)]
            argv += ["--revisions", str(args.revisions)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            results[case] = json.loads(out.strip().splitlines()[-1])
    rows = [
        (
            f"{case} (built: {', '.join(map(str, r['built'])) or 'none'})",
            f"{r['rss_mib']:,.0f} MiB",
        )
        for case, r in results.items()
    ]
    per_catalog = (results["every"]["rss_mib"] - results["newest"]["rss_mib"]) / max(
        args.revisions - 1, 1
    )
    rows.append(("each further built revision", f"{per_catalog:,.0f} MiB"))
    title = f"Catalog revisions in a worker: {args.revisions} of {args.sims:,} SIMs, RSS"
    print(table(rows, title))
    payload = {
        "environment": environment(),
        "sims": args.sims,
        "revisions": args.revisions,
        "cases": results,
        "mib_per_further_built_revision": per_catalog,
    }
    print(f"\nwrote {save('catalog_memory', payload)}")


if __name__ == "__main__":
    main()
