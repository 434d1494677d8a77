"""A replay shared out among processes: each job re-rates a disjoint set of wallets.

Wallets are shared out by their ``wallet.commands`` partition, so a job's adjustments go to
the partitions of few owners, and a wallet's inputs are read by one job only. Partitions are
weighed by their wallets' stored inputs, so that the jobs get alike shares of the work, not
of the partitions. A job works in two steps: it re-rates its wallets and hands the parent
the adjustments paid by another job's wallet (split billing); then it settles (decides, or
sends to the owners) every adjustment paid by its own wallets, those handed over included,
in the order a one-process run settles them. So the adjustments, their ids, their instants
and the report are the same whatever the number of jobs, and the parent, the store's only
writer, appends the decisions in that order too.

Each job opens its own store (SQLite: its own connection, reading; PostgreSQL: one
connection per process); the catalog and the index of split-billing adjustments are
inherited (``fork``), not loaded again.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from ..store.base import EventStore
from ..stream.routed import partition_of
from ..stream.topics import load_topics
from .replay_shard import Part, ShardReplay, Tagged

Job = Callable[[EventStore, Callable[[int], object]], ShardReplay]
"""Makes a job's ``ShardReplay`` over its store, ticking the progress by inputs re-rated."""


class ReplayJobError(RuntimeError):
    """A job of a parallel replay failed or stopped: the replay fails with it."""


@dataclass(frozen=True)
class Plan:
    """Which job re-rates each wallet (``shards[k]``: (place in the run, wallet) of job k),
    and which job settles what a wallet pays (``job_of``)."""

    shards: tuple[tuple[tuple[int, str], ...], ...]
    places: dict[int, int]
    """A partition's job."""
    partitions: int

    @property
    def jobs(self) -> int:
        return len(self.shards)

    def job_of(self, wallet_id: str) -> int:
        partition = partition_of(wallet_id.encode(), self.partitions)
        return self.places.get(partition, partition % self.jobs)


def shards(
    wallets: Sequence[str],
    jobs: int,
    partitions: int | None = None,
    sizes: Mapping[str, int] | None = None,
) -> Plan:
    """At most ``jobs`` jobs, no more than the wallets' partitions. A partition goes whole
    to one job: the heaviest first, each to the job with the least work so far, so that
    the jobs end together rather than one long after the others. A wallet weighs its
    ``sizes`` entry (the inputs it re-decides: ``EventStore.input_counts``), at least 1."""
    if jobs <= 1 or len(wallets) <= 1:
        return Plan((tuple(enumerate(wallets)),), {}, 1)
    count = partitions or load_topics().wallet_commands.partitions
    homes = [partition_of(w.encode(), count) for w in wallets]
    weights: dict[int, int] = {}
    for wallet_id, home in zip(wallets, homes, strict=True):
        size = sizes.get(wallet_id, 1) if sizes is not None else 1
        weights[home] = weights.get(home, 0) + max(1, size)
    n = max(1, min(jobs, len(weights)))
    loads = [0] * n
    places: dict[int, int] = {}
    for partition in sorted(weights, key=lambda p: (-weights[p], p)):
        job = min(range(n), key=lambda k: (loads[k], k))
        places[partition] = job
        loads[job] += weights[partition]
    groups: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    for index, (wallet_id, home) in enumerate(zip(wallets, homes, strict=True)):
        groups[places[home]].append((index, wallet_id))
    return Plan(tuple(tuple(g) for g in groups), places, count)


def run_jobs(
    plan: Plan,
    opener: Callable[[], EventStore],
    job: Job,
    start: datetime | None,
    end: datetime | None,
    tick: Callable[[int], object],
) -> list[Part]:
    """Run ``plan``'s jobs in processes; their parts, in job order. A job that fails, or
    whose process ends early, fails the replay (``ReplayJobError``) and stops the others."""
    context = multiprocessing.get_context("fork")
    conns: list[Connection] = []
    procs: list[BaseProcess] = []
    try:
        for k, shard in enumerate(plan.shards):
            mine, theirs = context.Pipe()
            proc = context.Process(
                target=_job,
                args=(k, plan, shard, opener, job, start, end, theirs),
                name=f"replay-job-{k + 1}",
                daemon=True,
            )
            proc.start()
            theirs.close()
            conns.append(mine)
            procs.append(proc)
        handed = _gather(conns, procs, tick)
        for k, conn in enumerate(conns):
            conn.send([t for out in handed for t in out.get(k, ())])
        parts: list[Part] = _gather(conns, procs, tick)
        for process in procs:
            process.join()
        return parts
    finally:
        for process in procs:
            if process.is_alive():  # the replay failed: the other jobs stop with it
                process.terminate()
                process.join()
        for conn in conns:
            conn.close()


def _gather(
    conns: list[Connection], procs: list[BaseProcess], tick: Callable[[int], object]
) -> list[Any]:
    """Each job's next answer, in job order, counting progress on the way."""
    answers: dict[int, object] = {}
    while len(answers) < len(conns):
        waiting = [c for k, c in enumerate(conns) if k not in answers]
        for conn in wait(waiting):
            assert isinstance(conn, Connection)
            k = conns.index(conn)
            try:
                kind, value = conn.recv()
            except EOFError:
                procs[k].join(5)
                raise ReplayJobError(
                    f"replay job {k + 1} of {len(conns)} stopped before it finished "
                    f"(exit code {procs[k].exitcode}); nothing was appended, run it again"
                ) from None
            if kind == "progress":
                tick(value)
            elif kind == "error":
                raise ReplayJobError(f"replay job {k + 1} of {len(conns)} failed: {value}")
            else:
                answers[k] = value
    return [answers[k] for k in range(len(conns))]


def _job(
    k: int,
    plan: Plan,
    shard: Sequence[tuple[int, str]],
    opener: Callable[[], EventStore],
    job: Job,
    start: datetime | None,
    end: datetime | None,
    conn: Connection,
) -> None:
    """One job's process: re-rate its wallets, hand over what other jobs' wallets pay,
    settle what its own wallets pay."""
    try:
        store = opener()
        try:
            run = job(store, lambda n: conn.send(("progress", n)))
            for index, wallet_id in shard:
                run.compare_wallet(index, wallet_id, start, end)
            mine: list[Tagged] = []
            theirs: dict[int, list[Tagged]] = {}
            for tagged in run.pending:
                target = plan.job_of(tagged[2].wallet_id)
                (mine if target == k else theirs.setdefault(target, [])).append(tagged)
            conn.send(("handed", theirs))
            run.settle([*mine, *conn.recv()])
            conn.send(("settled", run.part()))
        finally:
            store.close()
    except BaseException as exc:  # reported to the parent, which fails the run
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
        conn.send(("error", f"{type(exc).__name__}: {exc}{where}"))
        raise SystemExit(1) from None
