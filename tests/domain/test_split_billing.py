"""Split billing end to end: a filter routes usage to a payer wallet through the Pipeline."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.catalog import Filter
from engine.domain.events import CdrRejected, Charged, UsageRated
from engine.domain.evolve import fold
from engine.domain.state import initial_state
from engine.flow import follow_ups
from engine.offline.pipeline import Pipeline

from .builders import MB, T0, catalog, cdr, of, one, opening, plan, rate, types, wallet

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
