"""The worker's event loop: uvloop unless asked for asyncio's own, chosen before any loop
is built. (On a real broker, tests/stream/test_worker.py runs workers on each.)"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest
import uvloop

from engine.stream.event_loop import EVENT_LOOPS, running_loop_name, use_event_loop
from engine.stream.topics import StreamError


@pytest.fixture(autouse=True)
def _policy_restored() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


async def _name() -> str:
    return running_loop_name()


def test_uvloop_builds_every_loop_after_it_is_chosen() -> None:
    use_event_loop("uvloop")
    assert asyncio.run(_name()) == "uvloop.Loop"
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_asyncio_gives_the_standard_librarys_loop_back() -> None:
    use_event_loop("uvloop")
    use_event_loop("asyncio")
    name = asyncio.run(_name())
    assert name.startswith("asyncio.") and "uvloop" not in name
    loop = asyncio.new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.parametrize("name", EVENT_LOOPS)
def test_a_worker_batch_runs_alike_on_each_loop(name: str) -> None:
    """What the agents lean on: tasks, timeouts and a thread's result awaited."""
    use_event_loop(name)

    async def work() -> list[int]:
        slow = asyncio.create_task(asyncio.sleep(10))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(slow), 0.01)
        slow.cancel()
        loop = asyncio.get_running_loop()
        done = await loop.run_in_executor(None, sum, [1, 2, 3])
        return [done, *await asyncio.gather(*(asyncio.sleep(0, i) for i in range(3)))]

    assert asyncio.run(work()) == [6, 0, 1, 2]


def test_an_unknown_loop_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="event_loop is one of uvloop, asyncio: 'trio'"):
        use_event_loop("trio")


def test_without_uvloop_installed_the_worker_says_how_to_run_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # an import of it raises ImportError
    with pytest.raises(StreamError, match="RATING_EVENT_LOOP=asyncio"):
        use_event_loop("uvloop")
