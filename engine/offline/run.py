"""``rating-engine rate``: rate files in process and report what happened."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from tqdm import tqdm

from ..codec import Rejected, encode
from ..domain import Catalog
from ..store.base import EventStore, append_decisions
from .inputs import merged_with_origins
from .pipeline import Pipeline
from .summary import Summary, Totals, render, summarize


def rate_all(
    catalog: Catalog,
    cdrs: Path,
    commands: Path | None,
    events_out: IO[bytes] | None = None,
    rejected_out: IO[bytes] | None = None,
    progress: bool = False,
    store: EventStore | None = None,
) -> Summary:
    """Rate every input in time order; returns the reconciled summary. With a ``store``,
    every event and the input it was decided from are appended to it as the stream's sink
    would."""
    items, bad, origins = merged_with_origins(cdrs, commands)
    pipeline = Pipeline(catalog, record_inputs=store is not None)
    totals = Totals()
    pending = 0  # events decided since the last append
    for rejection in bad:
        pipeline.reject(rejection)
        if rejected_out is not None:
            rejected_out.write(encode(rejection) + b"\n")
    bar = tqdm(total=len(items), unit=" inputs", disable=not progress, file=sys.stderr)
    with bar:
        for n, item in enumerate(items, 1):
            result = pipeline.feed(item)
            if isinstance(result, Rejected):
                if rejected_out is not None:
                    evidence = origins.evidence(n - 1, result)
                    rejected_out.write(encode(evidence) + b"\n")
                continue
            for event in result:
                totals.observe(event)
                if events_out is not None:
                    events_out.write(encode(event) + b"\n")
            if store is not None:
                pending += len(result)
                if pending >= STORE_BATCH:
                    _flush(store, pipeline)
                    pending = 0
            if n % 4096 == 0:
                bar.update(4096)
        bar.update(len(items) % 4096)
    if store is not None:
        _flush(store, pipeline)
    return summarize(
        catalog, pipeline.states, totals, len(items) + len(bad), pipeline.rated, pipeline.rejected
    )


STORE_BATCH = 5000
"""Events per event-store transaction."""


def _flush(store: EventStore, pipeline: Pipeline) -> None:
    append_decisions(store, pipeline.decided)
    pipeline.decided.clear()


def run_rate(
    catalog: Catalog,
    cdrs: Path,
    commands: Path | None,
    events_out: Path | None = None,
    rejected_out: Path | None = None,
    as_json: bool = False,
    progress: bool = False,
    store: EventStore | None = None,
) -> int:
    with ExitStack() as stack:
        events = stack.enter_context(events_out.open("wb")) if events_out else None
        rejected = stack.enter_context(rejected_out.open("wb")) if rejected_out else None
        summary = rate_all(catalog, cdrs, commands, events, rejected, progress, store)
    if as_json:
        sys.stdout.write(encode(summary).decode() + "\n")
    else:
        print(render(summary, catalog))
    return 0 if summary.balanced else 3
