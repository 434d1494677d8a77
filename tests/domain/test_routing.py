"""Routing by stints: a CDR goes to the wallet whose stint of its SIM covers its start; the
route table a pipeline keeps from its decisions says where every SIM is, at every instant."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.routing import (
    SimRoute,
    covering_wallet,
    fallback_wallet,
    routes_after,
    wallet_of,
    with_routes,
)
from engine.domain.sims import sim_at, stints
from engine.offline.pipeline import Pipeline

from .builders import SIM1, SIM2, T0, Wallets, attach, catalog, detach, sub, wallet

W = [wallet("w1"), wallet("w2"), wallet("w3")]


def _route(iccid: str, wallet_id: str, *spans: tuple[int, int | None]) -> SimRoute:
    return SimRoute(iccid, wallet_id, tuple(spans), "basic")


def test_the_catalog_alone_routes_to_its_subscription_whatever_the_instant() -> None:
    cat = catalog(subs=[sub(SIM1, active_from=T0, active_to=T0 + 10)], wallets=W)
    assert wallet_of(cat, {}, SIM1, T0 - 5) == "w1"  # the wallet then rejects it, with why
    assert covering_wallet(cat, {}, SIM1, T0 - 5) is None
    assert covering_wallet(cat, {}, SIM1, T0) == "w1"
    assert covering_wallet(cat, {}, SIM1, T0 + 10) is None
    assert wallet_of(cat, {}, SIM2, T0) is None


def test_a_route_covering_the_instant_wins_over_the_catalog() -> None:
    cat = catalog(subs=[sub(SIM1)], wallets=W)
    routes = {SIM1: {"w1": _route(SIM1, "w1", (0, T0)), "w2": _route(SIM1, "w2", (T0, None))}}
    assert wallet_of(cat, routes, SIM1, T0 - 1) == "w1"
    assert wallet_of(cat, routes, SIM1, T0) == "w2"


def test_overlapping_stints_go_to_the_latest_begun() -> None:
    cat = catalog(subs=[sub(SIM1)], wallets=W)  # the catalog's stint never ends
    routes = {SIM1: {"w2": _route(SIM1, "w2", (T0, None))}}
    assert covering_wallet(cat, routes, SIM1, T0 + 1) == "w2"
    assert covering_wallet(cat, routes, SIM1, T0 - 1) == "w1"


def test_a_cdr_no_stint_covers_falls_back_to_the_latest_begun_else_the_earliest() -> None:
    cat = catalog(subs=[], wallets=W)
    routes = {
        SIM1: {"w1": _route(SIM1, "w1", (T0, T0 + 10)), "w2": _route(SIM1, "w2", (T0 + 20, None))}
    }
    assert covering_wallet(cat, routes, SIM1, T0 + 15) is None
    assert fallback_wallet(cat, routes, SIM1, T0 + 15) == "w1"
    assert fallback_wallet(cat, routes, SIM1, T0 - 1) == "w1"
    assert wallet_of(cat, routes, SIM1, T0 + 25) == "w2"
    assert fallback_wallet(cat, routes, SIM2, T0) is None


def test_routes_after_a_move_give_each_side_its_stints() -> None:
    cat = catalog(subs=[sub(SIM1)], wallets=W)
    old = Wallets(cat, "w1")
    left = old.when(detach("d1", SIM1, at=T0 + 10))
    new = Wallets(cat, "w2")
    came = new.when(attach("a1", SIM1, at=T0 + 10, wallet="w2"))
    (gone,) = routes_after(old.state, cat, left, T0 + 10)
    (here,) = routes_after(new.state, cat, came, T0 + 10)
    assert (gone.wallet, gone.stints, gone.plan) == ("w1", ((0, T0 + 10),), "")
    assert (here.wallet, here.stints, here.plan) == ("w2", ((T0 + 10, None),), "basic")
    routes: dict[str, dict[str, SimRoute]] = {}
    with_routes(routes, [gone, here])
    assert wallet_of(cat, routes, SIM1, T0 + 9) == "w1"
    assert wallet_of(cat, routes, SIM1, T0 + 10) == "w2"


def test_stints_keep_the_catalog_stint_once_an_attachment_takes_over() -> None:
    cat = catalog(subs=[sub(SIM1, active_from=T0)], wallets=W)
    run = Wallets(cat).given(detach("d1", SIM1, at=T0 + 10), attach("a1", SIM1, at=T0 + 20))
    assert stints(run.state, cat, SIM1) == ((T0, T0 + 10), (T0 + 20, None))


MOVE = st.tuples(st.sampled_from(["w1", "w2", "w3", None]), st.integers(1, 50))


@settings(max_examples=60, deadline=None)
@given(st.lists(MOVE, max_size=8), st.integers(0, 400))
def test_the_pipelines_routes_say_where_the_sim_was(
    moves: list[tuple[str | None, int]], probe: int
) -> None:
    """Whatever sequence of moves (to a wallet, or out of all), the routes kept from the
    decisions send a CDR at any instant to the wallet the SIM was in then (an independent
    model of the moves says which), and the wallet that holds it active then is that one."""
    cat = catalog(subs=[sub(SIM1, active_from=T0)], wallets=W)
    pipeline = Pipeline(cat)
    at, where = T0, "w1"
    model: list[tuple[str, int, int | None]] = [("w1", T0, None)]
    for n, (target, gap) in enumerate(moves):
        at += gap
        if where is not None:
            pipeline.feed(detach(f"d{n}", SIM1, at=at, wallet=where))
            model[-1] = (where, model[-1][1], at)
        if target is not None:
            pipeline.feed(attach(f"a{n}", SIM1, at=at, wallet=target))
            model.append((target, at, None))
        where = target
    ts = T0 + probe
    was = [w for w, start, end in model if start <= ts and (end is None or ts < end)]
    assert covering_wallet(cat, pipeline.routes, SIM1, ts) == (was[-1] if was else None)
    for w in ("w1", "w2", "w3"):
        if sim_at(pipeline.state(w), cat, SIM1, ts) is not None:
            assert was and w == was[-1]
