"""Limits in the contract: values beyond the catalog's settings are rejected, never charged."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain import decide, initial_state
from engine.domain.events import CdrRejected, CommandRejected, GrantAdded, UsageRated
from engine.domain.limits import DEFAULT_MAX_VOLUME, Limits, admit
from engine.domain.refusal import Refused

from .builders import (
    GB,
    MB,
    T0,
    Wallets,
    adopt_catalog,
    apply_charge,
    catalog,
    cdr,
    one,
    open_wallet,
    plan,
    rate,
    tick,
    top_up,
    types,
    version,
)

FAR = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (cdr("c1", 1 << 70), "volume_over_limit"),
        (cdr("c1", (1 << 63) - 1), "volume_over_limit"),
        (cdr("c1", 200_000, service="sms"), "volume_over_limit"),
        (cdr("c1", MB, at=FAR), "invalid_time"),
        (cdr("c1", MB, at=0), "invalid_time"),
    ],
)
def test_absurd_cdrs_are_rejected_not_charged(item: object, reason: str) -> None:
    run = Wallets(catalog())
    run.given(tick("k0", T0))
    before = run.balance
    events = run.when(item)  # type: ignore[arg-type]
    assert types(events) == ["CdrRejected"]
    assert one(events, CdrRejected).reason == reason
    assert run.balance == before


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (top_up("t1", "1" + "0" * 30), "amount_over_limit"),
        (top_up("t1", "1000001"), "amount_over_limit"),
        (top_up("t1", "5", priority=1 << 70), "invalid_priority"),
        (top_up("t1", "5", priority=-1), "invalid_priority"),
        (top_up("t1", "5", expires_at=FAR), "invalid_expiry"),
        (tick("k1", FAR), "invalid_time"),
        (apply_charge("a1", 10**14), "amount_over_limit"),
    ],
)
def test_absurd_commands_are_rejected(item: object, reason: str) -> None:
    run = Wallets(catalog())
    events = run.when(item)  # type: ignore[arg-type]
    assert types(events) == ["CommandRejected"]
    assert one(events, CommandRejected).reason == reason
    assert run.state == initial_state("w1")


def test_a_top_up_at_the_limit_is_accepted() -> None:
    run = Wallets(catalog())
    events = run.when(top_up("t1", "1000000"))
    assert "GrantAdded" in types(events)


def test_a_charge_over_the_limit_is_rejected_after_pricing_and_leaves_nothing() -> None:
    expensive = plan("basic", version(rates={"data": {"EU": rate("1000000", MB)}}))
    run = Wallets(catalog(plans=[expensive]))
    run.given(tick("k0", T0))
    before = run.state
    events = run.when(cdr("c1", 11 * MB))  # 11 million EUR > the 10 million limit
    assert types(events) == ["CdrRejected"]
    assert one(events, CdrRejected).reason == "amount_over_limit"
    assert run.state == before
    assert one(run.when(cdr("c2", 9 * MB)), UsageRated).amount == 9 * 10**12


def test_limits_come_from_the_catalog() -> None:
    cat = msgspec.structs.replace(
        catalog(), limits=Limits(max_volume={**DEFAULT_MAX_VOLUME, "data": GB}, max_amount=10**6)
    )
    state = initial_state("w1")
    assert one(decide(state, cdr("c1", GB + 1), cat), CdrRejected).reason == "volume_over_limit"
    assert one(decide(state, cdr("c1", GB), cat), UsageRated).volume == GB
    rejected = one(decide(state, top_up("t1", "1.000001"), cat), CommandRejected)
    assert rejected.reason == "amount_over_limit"


def test_admission_names_unknown_wallets_and_bad_times() -> None:
    cat = catalog()
    with pytest.raises(Refused) as ghost:
        admit(cat, "ghost", top_up("t1", "5", wallet="ghost"))
    assert ghost.value.reason == "unknown_wallet"
    with pytest.raises(Refused) as far:
        admit(cat, "w1", tick("k", FAR))
    assert far.value.reason == "invalid_time"
    assert admit(cat, "w1", tick("k", T0)) == T0  # the instant the decider then takes


def test_admission_lets_a_wallet_opened_by_command_and_its_opening_through() -> None:
    cat = catalog()
    # an opening or a catalog revision may reach a wallet the catalog does not list
    assert admit(cat, "w9", open_wallet("o1", at=T0)) == T0
    assert admit(cat, "w9", adopt_catalog("r2", 2, wallet="w9")) == T0
    # anything else only once opened (the caller knows it from the wallet's state)
    with pytest.raises(Refused):
        admit(cat, "w9", top_up("t1", "5", wallet="w9"))
    assert admit(cat, "w9", top_up("t1", "5", wallet="w9"), opened=True) == T0
    with pytest.raises(Refused) as far:
        admit(cat, "w9", open_wallet("o1", at=FAR))
    assert far.value.reason == "invalid_time"


def test_an_admitted_records_instant_is_its_own_whatever_its_offset() -> None:
    cat = catalog()
    for offset in (0, 330, -480):
        assert admit(cat, "w1", cdr("c1", 1, at=T0 + 7, offset=offset)) == T0 + 7


@given(
    volume=st.integers(min_value=0, max_value=1 << 80),
    service=st.sampled_from(["data", "sms", "voice", "event"]),
)
def test_no_accepted_cdr_exceeds_the_limits(volume: int, service: str) -> None:
    """Whatever the volume, a CDR is either rejected or charged within the limits, so every
    accepted value fits the projections' Int64 columns."""
    cat = catalog()
    events = decide(initial_state("w1"), cdr("c1", volume, service=service), cat)
    for e in events:
        if isinstance(e, UsageRated):
            assert e.volume <= cat.limits.max_volume[service]
            assert 0 <= e.amount <= cat.limits.max_charge
            assert e.rated_volume < 1 << 63
        elif isinstance(e, CdrRejected):
            assert volume > cat.limits.max_volume[service] or e.reason != "volume_over_limit"
    if volume > cat.limits.max_volume[service]:
        assert [getattr(e, "reason", None) for e in events] == ["volume_over_limit"]


@given(
    micros=st.integers(min_value=1, max_value=10**40),
    priority=st.one_of(st.none(), st.integers(min_value=-(1 << 80), max_value=1 << 80)),
)
def test_no_accepted_top_up_exceeds_the_limits(micros: int, priority: int | None) -> None:
    """Any top-up is either credited within the limits or rejected with the limit's reason."""
    cat = catalog()
    amount = f"{micros // 10**6}.{micros % 10**6:06d}"
    events = decide(initial_state("w1"), top_up("t1", amount, priority=priority), cat)
    limits = cat.limits
    over = micros > limits.max_amount
    bad_priority = priority is not None and not (
        limits.min_priority <= priority <= limits.max_priority
    )
    if over or bad_priority:
        reason = one(events, CommandRejected).reason
        assert reason == ("amount_over_limit" if over else "invalid_priority")
    else:
        grant = one(events, GrantAdded).grant
        assert grant.amount == micros and limits.min_priority <= grant.priority
