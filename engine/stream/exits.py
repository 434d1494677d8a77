"""How a worker process gives up, and with which exit status.

A worker never carries on after a failure that could lose or repeat work: it exits at once
(``os._exit``: no shutdown hook may commit anything on the way out), and whatever
supervises it restarts it, to resume from its durable state exactly as after SIGKILL.
The status says why:

- `AGENT_CRASHED` (70, EX_SOFTWARE): an agent raised (`stop_process_on_error`).
- `EXIT_DELIVERY_FAILED` (75, EX_TEMPFAIL): Kafka refused what a batch produced, or a
  partition's transaction failed other than by a fence (`stop_before_commit`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import NoReturn

import faust

log = logging.getLogger("rating-engine")

AGENT_CRASHED = 70
"""Exit status of a worker whose agent failed (EX_SOFTWARE)."""

Agent = Callable[[faust.StreamT], AsyncIterator[None]]


def stop_process_on_error(agent: Agent) -> Agent:
    """An agent that fails takes the whole worker down with a non-zero exit.

    Faust would restart the agent inside a process that carries on (and stays "healthy"),
    or leave it stopped; either hides the failure. A dead process is restarted by whatever
    supervises it and resumes from its durable state, like after SIGKILL.
    """

    async def run(stream: faust.StreamT) -> AsyncIterator[None]:
        try:
            async for item in agent(stream):
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException:
            log.critical("agent failed; stopping the worker", exc_info=True)
            logging.shutdown()
            os._exit(AGENT_CRASHED)

    return run


EXIT_DELIVERY_FAILED = 75
"""Exit status when Kafka refused what a batch produced (the process stops at once, before
Faust could commit the batch's input offsets; a restart redoes the batch exactly)."""


def stop_before_commit(why: BaseException, trace: bool = False) -> NoReturn:
    """Stop the process now: the next batch made durable would move the committed offsets
    past inputs whose output was lost. ``trace``: log where ``why`` came from (a failure
    other than a refused delivery)."""
    exc_info = why if trace else None
    log.critical("%s; stopping before the batch's inputs are committed", why, exc_info=exc_info)
    logging.shutdown()
    os._exit(EXIT_DELIVERY_FAILED)
