"""KeyLog: a persistent map that grows by appending (the dedup generations' structure).

Every version must keep reading what it held when it was made, whichever versions are
extended after it: the newest (the shared log is appended to) or an older one (it is
copied first). A dict model of each version is the reference."""

from __future__ import annotations

import gc

from hypothesis import given
from hypothesis import strategies as st
from immutables import Map
from msgspec.structs import replace

from engine.domain import initial_state
from engine.domain.keylog import NO_KEYS, KeyLog
from engine.states import decode_state, encode_state

KEYS = st.sampled_from([f"cdr:k{i}" for i in range(12)])

# Each step extends one of the versions made so far (by its index, modulo their number).
STEPS = st.lists(st.tuples(st.integers(min_value=0), KEYS, st.integers(0, 10**10)), max_size=60)


def _check(log: KeyLog, model: dict[str, int]) -> None:
    assert dict(log.items()) == model
    assert list(log) == list(model) == list(log.keys())
    assert list(log.values()) == list(model.values())
    assert len(log) == len(model) and bool(log) == bool(model)
    for key in [f"cdr:k{i}" for i in range(12)]:
        assert (key in log) == (key in model)
        assert log.get(key) == model.get(key)
    assert log == KeyLog.of(model.items()) and log == Map(model)
    assert (log != KeyLog.of(model.items()), log != Map(model)) == (False, False)


@given(STEPS)
def test_every_version_keeps_what_it_held(steps: list[tuple[int, str, int]]) -> None:
    versions: list[tuple[KeyLog, dict[str, int]]] = [(NO_KEYS, {})]
    for pick, key, at in steps:
        log, model = versions[pick % len(versions)]
        versions.append((log.set(key, at), {**model, key: at}))
    for log, model in versions:
        _check(log, model)
    assert not NO_KEYS and list(NO_KEYS.instants) == []  # the shared empty log stays empty


def test_the_newest_version_appends_and_an_older_one_copies() -> None:
    a = NO_KEYS.set("cdr:a", 1)
    b = a.set("cdr:b", 2)
    c = b.set("cdr:c", 3)
    assert a.instants is b.instants is c.instants  # appended: one shared log
    d = b.set("cdr:d", 4)  # b is no longer the newest: its keys are copied first
    assert d.instants is not c.instants
    assert dict(d.items()) == {"cdr:a": 1, "cdr:b": 2, "cdr:d": 4}
    assert "cdr:c" not in b and "cdr:c" in c and "cdr:d" not in c
    again = c.set("cdr:a", 9)  # a key it holds: its instant changes in a copy only
    assert again["cdr:a"] == 9 and c["cdr:a"] == 1


def test_the_collector_does_not_walk_the_keys() -> None:
    log = NO_KEYS
    for i in range(1_000):
        log = log.set(f"cdr:{i}", 1_700_000_000 + i)
    assert not gc.is_tracked(log) and not gc.is_tracked(log.instants)


def test_a_state_keeps_its_generations_through_a_snapshot() -> None:
    seen = KeyLog.of([("cdr:b", 2), ("cdr:a", 1)])
    state = replace(initial_state("w"), seen=seen, seen_before=NO_KEYS.set("cdr:z", 0))
    back = decode_state(encode_state(state))
    assert back == state and list(back.seen.items()) == [("cdr:b", 2), ("cdr:a", 1)]
    assert type(back.seen) is KeyLog and type(back.seen_before) is KeyLog
