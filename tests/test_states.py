"""The one encoding of a wallet state: every field survives it, the input ids can be kept
apart and joined back."""

from __future__ import annotations

import typing

import msgspec
from immutables import Map

from engine.domain import WalletState, initial_state
from engine.states import (
    DEDUP_FIELDS,
    MAP_ORDER,
    StateRecord,
    decode_state,
    encode_state,
    join_ids,
    split_ids,
)


def _busy() -> WalletState:
    return msgspec.structs.replace(
        initial_state("w1"),
        credit=5_000_000,
        seen=Map({"cdr:a": 10, "cdr:b": 11}),
        seen_before=Map({"cdr:z": 1}),
        commands=Map({"cmd:top-up": 3}),
        pool_used=Map({("pool", "2026-09"): 123}),
        vouchers=frozenset({"v1"}),
    )


def test_state_record_mirrors_every_wallet_state_field() -> None:
    assert list(StateRecord.__struct_fields__) == list(WalletState.__struct_fields__)


def test_a_state_reads_back_as_it_was_written() -> None:
    state = _busy()
    assert decode_state(encode_state(state)) == state


def test_the_input_ids_are_taken_out_and_joined_back() -> None:
    state = _busy()
    bare, ids = split_ids(state)
    assert all(len(getattr(bare, name)) == 0 for name in DEDUP_FIELDS)
    assert bare.pool_used == state.pool_used and bare.credit == state.credit
    assert sorted(ids) == [
        (0, "cdr:a", 10),
        (0, "cdr:b", 11),
        (1, "cdr:z", 1),
        (2, "cmd:top-up", 3),
    ]
    assert join_ids(bare, reversed(ids)) == state


def test_a_read_back_state_shares_its_subscriptions_strings() -> None:
    """Decoding makes a copy of every string; a read-back SIM shares its ICCID with the
    map's key, its wallet with the state's id and an interned plan, pool and add-ons, so a
    restored million SIMs do not hold millions of copies of the same names."""
    from engine.domain.catalog import Subscription

    def sim(iccid: str, **more: object) -> Subscription:
        return Subscription(iccid, "w1", "iot-eu", "pool-a", 10, **more)  # type: ignore[arg-type]

    state = msgspec.structs.replace(
        initial_state("w1"),
        attached=Map({"8940001": sim("8940001"), "8940002": sim("8940002", addons=("eu",))}),
        past=Map({"8940001": (sim("8940001", active_to=5),)}),
    )
    back = decode_state(encode_state(state))
    assert back == state
    subs = [*back.attached.values(), *(s for stints in back.past.values() for s in stints)]
    assert all(s.wallet is back.wallet_id for s in subs)
    assert all(back.attached[k].iccid is k for k in back.attached)
    assert all(back.past[k][0].iccid is k for k in back.past)
    assert len({id(s.plan) for s in subs}) == 1
    assert len({id(s.pool) for s in subs}) == 1


def test_a_read_back_subscription_keeps_every_field() -> None:
    """`states._shared` builds a read-back SIM field by field: a field it does not know of
    would be dropped silently, so the fields are pinned here, and each survives with a value
    unlike its default."""
    from engine.domain.catalog import Subscription

    fields = ["iccid", "wallet", "plan", "pool", "active_from", "active_to", "addons"]
    assert list(Subscription.__struct_fields__) == fields
    sub = Subscription("8940001", "w1", "iot-eu", "pool-a", 10, 99, ("eu", "sms"))
    state = msgspec.structs.replace(initial_state("w1"), attached=Map({"8940001": sub}))
    back = decode_state(encode_state(state)).attached["8940001"]
    assert msgspec.structs.asdict(back) == msgspec.structs.asdict(sub)


def test_every_map_of_a_wallet_state_but_the_commands_may_be_written_apart() -> None:
    """A map ``WalletState`` gains must be in ``MAP_ORDER``, or a wallet large in it would
    make its snapshot records too large again (engine/stream/chunks.py)."""
    hints = typing.get_type_hints(WalletState)
    maps = {name for name, hint in hints.items() if typing.get_origin(hint) is Map}
    assert set(MAP_ORDER) == maps - {"commands"} and len(MAP_ORDER) == len(set(MAP_ORDER))
