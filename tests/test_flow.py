"""The flow, written once: route → admit → decide → follow-ups. The offline pipeline, the
stream's processor and agents, and replay all call these functions."""

from __future__ import annotations

import msgspec
import pytest
from domain.builders import (
    DAY,
    MB,
    SIM1,
    SIM2,
    T0,
    attach,
    catalog,
    cdr,
    dt,
    open_wallet,
    opening,
    plan,
    rate,
    sub,
    top_up,
    wallet,
)

import engine.offline.pipeline
import engine.offline.replay_shard
import engine.stream.enricher
import engine.stream.processor
import engine.stream.rater
from engine import flow
from engine.codec import Rejected, decode_decision, encode
from engine.domain import Origin, initial_state
from engine.domain.catalog import Filter
from engine.domain.commands import AdoptCatalog, ApplyCharge, OpenWallet
from engine.domain.decision import NOWHERE
from engine.domain.events import SimsBarred, UsageRated, WalletOpened
from engine.domain.refusal import Refused
from engine.domain.routing import SimRoute
from engine.offline.pipeline import Pipeline
from engine.stream.processor import RatingProcessor

CORP = Filter("corp-apn", apns=("corp.apn",), payer="corp")


def _split_catalog():  # type: ignore[no-untyped-def]
    return catalog(
        plans=[plan(rates={"data": {"EU": rate("0.5", MB)}}, filters=[CORP])],
        wallets=[
            wallet("w1", opening=[opening("10")]),
            wallet("corp", opening=[opening("3")], overdraft="1"),
        ],
    )


def test_every_caller_runs_the_one_flow() -> None:
    assert engine.offline.pipeline.run is flow.run
    assert engine.stream.processor.decide is flow.decide
    assert engine.offline.replay_shard.decide is flow.decide
    assert engine.stream.processor.admit is flow.admit
    assert engine.stream.enricher.route is flow.route
    rater = engine.stream.rater
    assert (rater.follow_ups, rater.refused) == (flow.follow_ups, flow.refused)


def test_offline_and_stream_make_the_same_decisions() -> None:
    cat = _split_catalog()
    inputs = [
        cdr("c1", 2 * MB),
        cdr("c2", 3 * MB, apn="corp.apn", at=T0 + 1),
        top_up("t1", "5", at=T0 + 2),
        cdr("c3", MB, at=T0 + 3),
    ]
    pipeline = Pipeline(cat, record_inputs=True)
    processor = RatingProcessor(cat)
    processor.recover(0, [])
    for offset, item in enumerate(inputs):
        assert not isinstance(pipeline.feed(item), Rejected)
        target = item.wallet_id if not isinstance(item, type(inputs[0])) else "w1"
        streamed = processor.decide(0, target, item, Origin("cdr.raw", 0, offset))
        assert streamed is not None
        offline = pipeline.decided[0]
        assert offline.origin == NOWHERE and streamed.origin == ("cdr.raw", 0, offset)
        assert (streamed.wallet_id, streamed.input, streamed.events, streamed.item) == (
            offline.wallet_id,
            offline.input,
            offline.events,
            offline.item,
        )
        # the routed charge: decided at once offline, sent to the payer by the stream
        charges = flow.follow_ups(streamed.events).charges
        assert [d.item for d in pipeline.decided[1:]] == list(charges)
        pipeline.decided.clear()
    assert pipeline.states["w1"] == processor.partitions[0].wallets["w1"]


def test_a_decision_travels_whole_through_the_codec() -> None:
    made, after = flow.decide(initial_state("w1"), "w1", cdr("c1", MB), catalog())
    assert decode_decision(encode(made)) == made
    assert made.cdr is not None and made.command is None and made.input == "cdr:c1"
    assert after.watermark == T0


def test_routes_are_a_parameter_the_stream_passes_empty() -> None:
    cat = catalog(subs=[sub(SIM1), sub(SIM2)], wallets=[wallet("w1"), wallet("w2")])
    record = cdr("c1", MB, iccid=SIM2)
    assert flow.route(cat, flow.CATALOG_ROUTES, record) == "w1"
    moved = {SIM2: {"w2": SimRoute(SIM2, "w2", ((0, None),), "p1")}}
    assert flow.route(cat, moved, record) == "w2"
    unknown = flow.route(cat, {}, cdr("c2", MB, iccid="89000"), "f:1", b"{}")
    assert isinstance(unknown, Rejected)
    assert (unknown.reason, unknown.origin, unknown.raw) == ("unknown_sim", "f:1", "{}")


def test_the_pipeline_routes_by_the_moves_it_saw() -> None:
    cat = catalog(subs=[sub(SIM1)], wallets=[wallet("w1"), wallet("w2")])
    pipeline = Pipeline(cat)
    pipeline.feed(attach("a1", SIM1, at=T0, wallet="w2"))
    events = pipeline.feed(cdr("c1", MB, at=T0 + 1))
    assert isinstance(events, list)
    assert [e.wallet_id for e in events if isinstance(e, UsageRated)] == ["w2"]


def test_follow_ups_are_network_actions_and_routed_charges() -> None:
    cat = catalog(
        plans=[plan(rates={"data": {"EU": rate("1", MB)}})],
        wallets=[wallet("w1", opening=[opening("1")], suspend_at=0)],
    )
    made, _ = flow.decide(initial_state("w1"), "w1", cdr("c1", 10 * MB), cat)
    actions, charges = flow.follow_ups(made.events)
    assert [type(a) for a in actions] == [SimsBarred] and charges == ()
    routed, _ = flow.decide(
        initial_state("w1"), "w1", cdr("c2", 2 * MB, apn="corp.apn"), _split_catalog()
    )
    actions, charges = flow.follow_ups(routed.events)
    assert actions == ()
    assert [(c.wallet_id, c.amount) for c in charges] == [("corp", 1_000_000)]
    assert all(isinstance(c, ApplyCharge) for c in charges)


def test_a_decision_of_one_rated_cdr_follows_up_as_any_other() -> None:
    """Most decisions hold one UsageRated, and take a shorter way: the same follow-ups as
    the same event with another beside it that asks nothing."""
    cat = _split_catalog()
    first, state = flow.decide(initial_state("w1"), "w1", cdr("c1", MB), cat)
    quiet = next(e for e in first.events if not isinstance(e, UsageRated))
    for item, payer in ((cdr("c2", 2 * MB, apn="corp.apn"), "corp"), (cdr("c3", MB), None)):
        made, _ = flow.decide(state, "w1", item, cat)
        (rated,) = made.events
        assert isinstance(rated, UsageRated)
        found = flow.follow_ups(made.events)
        assert found == flow.follow_ups((quiet, rated))
        assert [c.wallet_id for c in found.charges] == ([payer] if payer else [])
        assert found.actions == ()


def test_run_refuses_before_any_wallet_and_keeps_nothing() -> None:
    cat = catalog()
    ghost = flow.run({1: cat}, {}, initial_state, top_up("t1", "5", wallet="ghost"))
    assert isinstance(ghost, Rejected)
    assert (ghost.reason, ghost.wallet_id, ghost.cdr_id) == ("unknown_wallet", "ghost", None)
    refusal = Refused("invalid_time", "too late")
    record = flow.refused(refusal, "cdr.raw/0@7", "w1", cdr("c1", MB))
    assert (record.reason, record.origin, record.iccid, record.wallet_id) == (
        "invalid_time",
        "cdr.raw/0@7",
        SIM1,
        "w1",
    )


def test_run_takes_a_wallet_opened_by_command() -> None:
    revisions = {1: catalog()}
    states = {}
    outcome = flow.run(revisions, {}, initial_state, open_wallet("o1", wallet="w9"))
    assert isinstance(outcome, flow.Outcome)
    states.update(outcome.states)
    later = flow.run(
        revisions, {}, lambda w: states.get(w) or initial_state(w), top_up("t1", "5", wallet="w9")
    )
    assert isinstance(later, flow.Outcome)
    assert later.states["w9"].balance == 5_000_000
    # without the opening, the same top-up is refused before any wallet
    refused = flow.run(revisions, {}, initial_state, top_up("t1", "5", wallet="w9"))
    assert isinstance(refused, Rejected) and refused.reason == "unknown_wallet"


def test_run_decides_a_routed_charge_in_the_payer_wallet() -> None:
    outcome = flow.run({1: _split_catalog()}, {}, initial_state, cdr("c1", 2 * MB, apn="corp.apn"))
    assert isinstance(outcome, flow.Outcome)
    assert [d.wallet_id for d in outcome.decisions] == ["w1", "corp"]
    assert set(outcome.states) == {"w1", "corp"}


def test_each_input_is_decided_with_its_wallets_revision_and_says_which() -> None:
    first, second = catalog(dedup_window=DAY), catalog(dedup_window=2 * DAY)
    revisions = {1: first, 2: second}
    opened = OpenWallet(command_id="o1", wallet_id="shop", at=dt(T0), currency="EUR", revision=2)
    outcome = flow.run(revisions, {}, initial_state, opened)
    assert isinstance(outcome, flow.Outcome)
    (made,) = outcome.decisions
    assert made.revision == 2 and outcome.states["shop"].revision == 2
    assert isinstance(made.events[0], WalletOpened) and made.events[0].dedup_window == 2 * DAY
    # A catalog wallet adopts revision 2 with it; before, it is on the first (recorded 0).
    before, state = flow.decide(initial_state("w1"), "w1", top_up("t1", "5"), first)
    assert before.revision == 0
    adopt = AdoptCatalog(command_id="a2", wallet_id="w1", at=dt(T0), revision=2, digest="d")
    assert flow.pick(revisions, state, adopt) == (2, second)
    with pytest.raises(flow.MissingRevision):
        flow.pick(
            revisions, state, AdoptCatalog(**{**msgspec.structs.asdict(adopt), "revision": 3})
        )
