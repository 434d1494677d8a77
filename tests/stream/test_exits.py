"""A worker gives up at once, with the exit status that says why, and writes why to its log."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from engine.stream.exits import AGENT_CRASHED, EXIT_DELIVERY_FAILED

from .harness import REPO

AGENT_FAILS = """
    import asyncio
    from engine.stream.exits import stop_process_on_error

    async def agent(stream):
        yield None
        raise RuntimeError("a bug in the agent")

    async def main():
        async for _ in stop_process_on_error(agent)(None):
            pass

    asyncio.run(main())
    print("carried on")
"""

DELIVERY_FAILS = """
    import logging
    from engine.stream.exits import stop_before_commit
    from engine.stream.producer import DeliveryFailed

    logging.basicConfig()
    try:
        stop_before_commit(DeliveryFailed("enrich: delivery failed: Message timed out"))
    finally:
        print("carried on")
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("code", "status", "logged"),
    [
        (AGENT_FAILS, AGENT_CRASHED, "agent failed; stopping the worker"),
        (DELIVERY_FAILS, EXIT_DELIVERY_FAILED, "stopping before the batch's inputs are committed"),
    ],
)
def test_the_process_stops_at_once_with_its_status(code: str, status: int, logged: str) -> None:
    done = _run(code)
    assert done.returncode == status, done.stderr
    assert logged in done.stderr
    assert "carried on" not in done.stdout  # no finally, no handler ran on the way out
