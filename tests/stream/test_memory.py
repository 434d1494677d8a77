"""The worker's native heap settings (memory.py): arenas capped unless the environment
says otherwise, free memory given back, nothing done without glibc."""

from __future__ import annotations

from typing import Any

from engine.stream import memory
from engine.stream.garbage import Garbage, GcPauses


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_arenas_are_capped_unless_the_environment_sets_them() -> None:
    libc = FakeLibc()
    assert memory.cap_arenas({}, libc) == memory.ARENAS
    assert libc.calls == [("mallopt", memory.M_ARENA_MAX, memory.ARENAS)]
    libc.calls.clear()
    assert memory.cap_arenas({"MALLOC_ARENA_MAX": "4"}, libc) is None
    assert libc.calls == []  # glibc read it itself


def test_a_refused_limit_is_not_reported_as_set() -> None:
    libc = FakeLibc()
    libc.mallopt = lambda param, value: 0  # type: ignore[method-assign]
    assert memory.cap_arenas({}, libc) is None


def test_free_memory_is_given_back_when_glibc_is_there(monkeypatch: Any) -> None:
    libc = FakeLibc()
    assert memory.release_free_memory(libc)
    assert libc.calls == [("malloc_trim", 0)]
    monkeypatch.setattr(memory, "glibc", lambda: None)  # musl, macOS
    assert not memory.release_free_memory()
    assert memory.cap_arenas({}) is None


def test_this_process_has_glibc_or_does_nothing() -> None:
    # Whatever the C library, asking never fails.
    assert memory.release_free_memory() == (memory.glibc() is not None)


def test_settling_gives_free_memory_back_once_per_set_of_partitions(monkeypatch: Any) -> None:
    released: list[bool] = []
    monkeypatch.setattr("engine.stream.garbage.release_free_memory", lambda: released.append(True))
    garbage = Garbage(GcPauses(), freeze=False, threshold=None)
    garbage.settle(frozenset({0}))
    assert released == []  # not started: a test's process
    garbage.start()
    try:
        assert not garbage.settle(frozenset({0}))  # no freeze asked: none done
        assert released == [True]
        garbage.settle(frozenset({0}))
        assert released == [True]
        garbage.settle(frozenset({0, 1}))
        assert released == [True, True]
    finally:
        garbage.stop()
