"""The worker's native heap (glibc malloc): fewer arenas, and free memory given back.

Python's own allocator serves small objects; everything larger (a Kafka record's bytes, a
big dict's or list's table) and everything librdkafka allocates comes from glibc's
``malloc``. glibc gives each thread that allocates under contention an arena of its own
(up to eight per core), and keeps what is freed in an arena for reuse instead of returning
it to the system. A worker's start-up allocates a lot and frees most of it on many threads
at once (the directory read, each partition's recovery with its own Kafka clients), so a
restarted worker used to hold about twice the memory it needed: at 200,000 SIMs, 338 MB
obtained from glibc with 50 MB in use (``malloc_stats``).

- `cap_arenas`, at process start: at most `ARENAS` arenas (``mallopt(M_ARENA_MAX)``),
  unless ``MALLOC_ARENA_MAX`` in the environment already says how many (glibc reads it
  itself).
- `release_free_memory` (``malloc_trim(0)``): the free pages of every arena back to the
  system; called once the directory is read and once the owned partitions are recovered.

Both only change how memory is held, never what the worker does; on a C library without
them (musl, macOS) they do nothing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from typing import Any

ARENAS = 2
"""glibc malloc arenas of a worker (``MALLOC_ARENA_MAX`` overrides)."""

M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena limit (glibc's malloc.h)."""


def glibc() -> Any | None:
    """The process's C library when it has glibc's ``mallopt`` and ``malloc_trim``."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - raises AttributeError when absent
    except (OSError, AttributeError):
        return None
    return libc


def cap_arenas(env: Mapping[str, str] = os.environ, libc: Any | None = None) -> int | None:
    """Limit glibc to `ARENAS` malloc arenas, unless ``MALLOC_ARENA_MAX`` is set; the limit
    set, or ``None`` when nothing was (set by the environment, or not glibc). Call it before
    the process starts its threads: an arena made earlier stays."""
    if env.get("MALLOC_ARENA_MAX"):
        return None
    libc = libc if libc is not None else glibc()
    if libc is None:
        return None
    return ARENAS if libc.mallopt(M_ARENA_MAX, ARENAS) == 1 else None


def release_free_memory(libc: Any | None = None) -> bool:
    """Give glibc's free memory back to the system (``malloc_trim(0)``); whether it could."""
    libc = libc if libc is not None else glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
