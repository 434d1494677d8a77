"""The worker's event loop: uvloop by default, asyncio's own on request.

Faust, aiokafka and the two agents all run on one event loop, which holds the interpreter
lock for most of a busy worker's time. uvloop (libuv, in C) schedules callbacks and reads
the consumers' sockets in fewer interpreter steps than asyncio's own loop: measured one
worker against the other on the same broker, alternated, it cut the worker's CPU per CDR by
about 7% (docs/performance.md, "The event loop: uvloop"). It changes when the loop wakes,
never what is decided; ``RATING_EVENT_LOOP=asyncio`` keeps the standard library's.
"""

from __future__ import annotations

import asyncio

from .topics import StreamError

EVENT_LOOPS = ("uvloop", "asyncio")


def check_event_loop(name: str) -> None:
    """Refuse a name that is not one of `EVENT_LOOPS`, saying which are."""
    if name not in EVENT_LOOPS:
        raise ValueError(f"event_loop is one of {', '.join(EVENT_LOOPS)}: {name!r}")


def use_event_loop(name: str) -> None:
    """Make ``name`` the kind of every event loop this process builds from now on (call it
    before any is built: Faust builds its own when the worker starts)."""
    check_event_loop(name)
    if name == "uvloop":
        try:  # a compiled extension: loaded only by the processes that use it
            import uvloop
        except ImportError:  # not built for this platform (Windows): the lock leaves it out
            raise StreamError(
                "uvloop is not installed here; RATING_EVENT_LOOP=asyncio (or --event-loop "
                "asyncio) runs the worker on asyncio's own loop"
            ) from None
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())


def running_loop_name() -> str:
    """The running loop's class, as the worker logs it once started: ``uvloop.Loop`` or
    ``asyncio.unix_events._UnixSelectorEventLoop``."""
    loop = type(asyncio.get_running_loop())
    return f"{loop.__module__}.{loop.__qualname__}"
