"""What a worker is doing, on demand: ``kill -USR1 <pid>`` writes it to the worker's log.

For the on-call operator whose worker is up and "ready" yet does not move: which partitions
it holds, which are paused, whether Faust's flow is suspended, where each fetch position
is against the partition's end, and the stack of every asyncio task (an agent waiting on
something shows here, and what it waits on).
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from typing import Any

from .faust_compat import consumer_report, tps_text

log = logging.getLogger("rating-engine")


def describe(app: Any, recovering: dict[int, Any]) -> str:
    """A readable report of the consumer's state and every task's stack."""
    out = io.StringIO()
    consumer = app.consumer
    out.write("worker state\n")
    out.write(f"  rebalancing={app.rebalancing} in_recovery={app.in_recovery}\n")
    out.write(f"  flow_control active={app.flow_control.is_active()}\n")
    out.write(f"  consumer flow_active={consumer.flow_active}\n")
    out.write(f"  assignment={tps_text(consumer.assignment())}\n")
    states = {p: ("done" if f.done() else "running") for p, f in recovering.items()}
    out.write(f"  recoveries={states}\n")
    for line in consumer_report(consumer):
        out.write(f"  {line}\n")
    for task in asyncio.all_tasks():
        out.write(f"\ntask {task.get_name()}: {task.get_coro()!r}\n")
        task.print_stack(file=out)
    return out.getvalue()


def install(app: Any, recovering: dict[int, Any]) -> None:
    """On SIGUSR1, log `describe`'s report (from the event loop, so nothing races it)."""

    def report() -> None:
        try:
            log.warning("state on SIGUSR1:\n%s", describe(app, recovering))
        except Exception:  # a report that fails must not take the worker down
            log.exception("could not describe the worker's state")

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report)
