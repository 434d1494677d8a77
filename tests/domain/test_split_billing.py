"""Split billing end to end: a filter routes usage to a payer wallet through the Pipeline."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from engine.domain.catalog import Filter
from engine.domain.commands import ApplyCharge
from engine.domain.events import CdrRejected, Charged, CommandRejected, Event, UsageRated
from engine.domain.evolve import evolve, fold
from engine.domain.ids import is_routed_command, routed_command_id
from engine.domain.state import WalletState, initial_state
from engine.flow import follow_ups
from engine.offline.pipeline import Pipeline

from .builders import DAY, MB, T0, catalog, cdr, dt, of, one, opening, plan, rate, types, wallet

CORP = Filter("corp-apn", apns=("corp.apn",), payer="corp")


def split_catalog() -> object:
    return catalog(
        plans=[plan(rates={"data": {"EU": rate("0.5", MB)}}, filters=[CORP])],
        wallets=[
            wallet("w1", opening=[opening("10")]),
            wallet("corp", opening=[opening("3")], overdraft="1"),
        ],
    )


def test_routed_usage_is_debited_from_the_payer_wallet() -> None:
    pipeline = Pipeline(split_catalog())  # type: ignore[arg-type]
    # when a record on the corporate APN arrives for w1's SIM
    events = pipeline.feed(cdr("c1", 5 * MB, apn="corp.apn"))
    assert isinstance(events, list)
    assert types(events) == ["WalletOpened", "UsageRated", "WalletOpened", "Charged"]
    rated, charged = one(events, UsageRated), one(events, Charged)
    # then w1 rates it with its revenue lines, and pays nothing
    assert (rated.wallet_id, rated.payer, rated.amount, rated.debits) == (
        "w1",
        "corp",
        2_500_000,
        (),
    )
    assert sum(s.amount for s in rated.splits) == rated.amount
    # and corp pays it from its own grant, without revenue lines of its own
    assert (charged.wallet_id, charged.kind, charged.source_wallet, charged.cdr_id) == (
        "corp",
        "routed_usage",
        "w1",
        "c1",
    )
    assert [(d.grant_id, d.amount) for d in charged.debits] == [("open:corp/0", 2_500_000)]
    assert (charged.amount, charged.splits, charged.id) == (2_500_000, (), "cmd:route:cdr:c1#1#1")
    assert pipeline.states["w1"].balance == 10_000_000
    assert pipeline.states["corp"].balance == 500_000


def test_usage_off_the_corporate_apn_stays_with_the_sim_wallet() -> None:
    pipeline = Pipeline(split_catalog())  # type: ignore[arg-type]
    events = pipeline.feed(cdr("c1", 2 * MB, apn="internet"))
    assert isinstance(events, list)
    rated = one(events, UsageRated)
    assert (rated.payer, [d.amount for d in rated.debits]) == ("w1", [1_000_000])
    assert not of(events, Charged)
    assert "corp" not in pipeline.states


def test_a_resent_routed_record_charges_the_payer_once() -> None:
    pipeline = Pipeline(split_catalog())  # type: ignore[arg-type]
    pipeline.feed(cdr("c1", 5 * MB, apn="corp.apn"))
    again = pipeline.feed(cdr("c1", 5 * MB, apn="corp.apn", at=T0 + 60))
    assert isinstance(again, list)
    assert one(again, CdrRejected).reason == "duplicate"
    assert not of(again, Charged)
    assert pipeline.states["corp"].balance == 500_000


def test_a_retried_apply_charge_is_a_no_op_in_the_payer_wallet() -> None:
    pipeline = Pipeline(split_catalog())  # type: ignore[arg-type]
    events = pipeline.feed(cdr("c1", 5 * MB, apn="corp.apn"))
    assert isinstance(events, list)
    (charge,) = follow_ups(events).charges
    before = pipeline.states["corp"]
    # at-least-once delivery of the command is exact: the retry decides nothing at all
    retried = pipeline.feed(charge)
    assert retried == []
    assert pipeline.states["corp"] == before
    assert pipeline.states["corp"].balance == 500_000


def test_the_payer_owes_routed_usage_past_its_overdraft_limit() -> None:
    pipeline = Pipeline(split_catalog())  # type: ignore[arg-type]
    pipeline.feed(cdr("c1", 5 * MB, apn="corp.apn"))  # corp: 0.50 left
    events = pipeline.feed(cdr("c2", 4 * MB, apn="corp.apn", at=T0 + 1))  # 2.00 EUR
    assert isinstance(events, list)
    charged = one(events, Charged)
    assert ([d.amount for d in charged.debits], charged.overdraft, charged.uncollected) == (
        [500_000],
        1_500_000,
        0,
    )


def test_pipeline_states_are_the_fold_of_their_events() -> None:
    pipeline = Pipeline(split_catalog())  # type: ignore[arg-type]
    history: list[object] = []
    for i in range(5):
        out = pipeline.feed(
            cdr(f"c{i}", (i + 1) * MB, apn="corp.apn" if i % 2 else None, at=T0 + i)
        )
        assert isinstance(out, list)
        history.extend(out)
    for wallet_id, state in pipeline.states.items():
        mine = [e for e in history if e.wallet_id == wallet_id]  # type: ignore[attr-defined]
        assert fold(initial_state(wallet_id), mine) == state  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    records=st.lists(
        st.tuples(st.integers(0, 8 * MB), st.sampled_from([None, "corp.apn"]), st.integers(0, 9)),
        max_size=20,
    )
)
def test_every_routed_charge_is_paid_once_by_the_payer(
    records: list[tuple[int, str | None, int]],
) -> None:
    pipeline = Pipeline(split_catalog())  # type: ignore[arg-type]
    history: list[object] = []
    for i, (volume, apn, resend) in enumerate(records):
        cdr_id = f"c{min(i, resend)}"  # some ids are re-sent
        out = pipeline.feed(cdr(cdr_id, volume, apn=apn, at=T0 + i))
        assert isinstance(out, list)
        history.extend(out)
    # a routed usage of zero moves no money, so no charge is routed for it
    routed = {e.cdr_id: e.amount for e in of(history, UsageRated) if e.payer == "corp" and e.amount}
    paid = [(c.cdr_id, c.amount) for c in of(history, Charged) if c.kind == "routed_usage"]
    assert sorted(paid) == sorted(routed.items())
    assert all(c.wallet_id == "corp" and c.source_wallet == "w1" for c in of(history, Charged))
    # corp opens with 3 EUR; all of the routed usage is paid or owed, past its overdraft too
    if routed:
        spent = sum(routed.values())
        assert pipeline.state("corp").balance == 3_000_000 - spent


# -- how long a payer remembers its routed charges -----------------------------------------

WINDOW = 10 * DAY


def windowed_catalog() -> object:
    """``split_catalog`` with a dedup window of ten days, and credit for months of usage."""
    return catalog(
        plans=[plan(rates={"data": {"EU": rate("0.5", MB)}}, filters=[CORP])],
        wallets=[
            wallet("w1", opening=[opening("10")]),
            wallet("corp", opening=[opening("1000")]),
        ],
        dedup_window=WINDOW,
    )


def routed_keys(state: WalletState) -> list[str]:
    """The routed charges' keys a wallet's state holds, wherever it holds them."""
    keys = [*state.seen, *state.seen_before, *state.commands]
    return [k for k in keys if is_routed_command(k)]


def test_a_payer_remembers_routed_charges_for_its_window_only() -> None:
    pipeline = Pipeline(windowed_catalog())  # type: ignore[arg-type]
    # two months of corporate usage, one record a day: a routed charge each
    for day in range(60):
        out = pipeline.feed(cdr(f"c{day}", MB, apn="corp.apn", at=T0 + day * DAY))
        assert isinstance(out, list)
        assert one(out, Charged).kind == "routed_usage"
    corp = pipeline.state("corp")
    # none is kept for good, and the generations hold one to two windows of them
    assert not [k for k in corp.commands if is_routed_command(k)]
    assert 10 <= len(routed_keys(corp)) <= 21
    assert corp.retained_since > T0 + 30 * DAY
    assert corp.balance == 1_000_000_000 - 60 * 500_000


def test_a_retried_routed_charge_is_a_no_op_then_late_never_a_second_debit() -> None:
    pipeline = Pipeline(windowed_catalog())  # type: ignore[arg-type]
    out = pipeline.feed(cdr("c0", MB, apn="corp.apn", at=T0))
    assert isinstance(out, list)
    (charge,) = follow_ups(out).charges
    # within the window the retry decides nothing at all
    assert pipeline.feed(charge) == []
    for day in range(1, 40):
        pipeline.feed(cdr(f"c{day}", MB, apn="corp.apn", at=T0 + day * DAY))
    before = pipeline.state("corp")
    assert routed_keys(before) and charge.command_id not in {
        k.removeprefix("cmd:") for k in routed_keys(before)
    }
    # its key is gone with its generation: the retry is refused as late, and moves nothing
    retried = pipeline.feed(charge)
    assert isinstance(retried, list)
    assert (one(retried, CommandRejected).reason, types(retried)) == ("late", ["CommandRejected"])
    assert pipeline.state("corp").balance == before.balance


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.tuples(st.integers(0, 50 * DAY), st.integers(1, 4 * MB), st.booleans()),
        min_size=1,
        max_size=40,
    ),
    retries=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=15),
)
def test_a_payer_pays_each_routed_charge_at_most_once_and_stays_bounded(
    records: list[tuple[int, int, bool]], retries: list[tuple[int, int]]
) -> None:
    """Records out of order over five windows, routed charges retried along the way and all
    of them at the end: each usage is paid at most once, a charge is refused only as late,
    the payer keeps routed keys only in its dedup generations, and every state is the fold
    of its events."""
    pipeline = Pipeline(windowed_catalog())  # type: ignore[arg-type]
    history: list[Event] = []
    charges: list[ApplyCharge] = []
    resend = {later: earlier for earlier, later in retries}
    for i, (offset, volume, corporate) in enumerate(records):
        apn = "corp.apn" if corporate else None
        out = pipeline.feed(cdr(f"c{i}", volume, apn=apn, at=T0 + offset))
        assert isinstance(out, list)
        history.extend(out)
        charges.extend(follow_ups(out).charges)
        if i in resend and resend[i] < len(charges):
            retried = pipeline.feed(charges[resend[i]])
            assert isinstance(retried, list)
            assert all(isinstance(e, CommandRejected) and e.reason == "late" for e in retried)
            history.extend(retried)
    for charge in charges:  # and, at the end, every one of them again
        retried = pipeline.feed(charge)
        assert isinstance(retried, list)
        assert all(isinstance(e, CommandRejected) and e.reason == "late" for e in retried)
        history.extend(retried)
    paid = [c.cdr_id for c in of(history, Charged) if c.kind == "routed_usage"]
    assert len(paid) == len(set(paid))
    # (a routed usage of zero moves no money: no charge is routed for it)
    routed = {e.cdr_id: e for e in of(history, UsageRated) if e.payer == "corp" and e.amount}
    assert set(paid) <= set(routed)
    # a routed usage no debit followed was refused as late in the payer, and nothing else is
    late = {r.command_id for r in of(history, CommandRejected) if r.reason == "late"}
    assert len(late) == len({r.command_id for r in of(history, CommandRejected)})
    for cdr_id in set(routed) - set(paid):
        assert routed_command_id(routed[cdr_id].id) in late
    # the payer holds routed keys only in its dedup generations
    corp = pipeline.state("corp")
    assert not [k for k in corp.commands if is_routed_command(k)]
    assert len(routed_keys(corp)) <= len(paid)
    for wallet_id, state in pipeline.states.items():
        mine = [e for e in history if e.wallet_id == wallet_id]
        assert fold(initial_state(wallet_id), mine) == state


def test_routed_keys_a_state_kept_for_good_go_once_the_window_passes_them() -> None:
    """A state from before routed charges were windowed (a snapshot) holds their keys in
    ``commands``; they go when a generation is dropped past their instant, the other
    commands' keys stay."""
    old_key, top_up_key = "cmd:route:cdr:c0#1", "cmd:t1"
    state = replace(
        initial_state("corp"),
        commands=initial_state("corp").commands.set(old_key, T0).set(top_up_key, T0),
        dedup_window=WINDOW,
    )
    for day in range(40):
        charged = Charged(
            f"cmd:route:cdr:x{day}#1#0", "corp", dt(T0 + day * DAY), "routed_usage", "w1", 1
        )
        state = evolve(state, charged)
    assert state.retained_since > T0
    assert old_key not in state.commands and top_up_key in state.commands
