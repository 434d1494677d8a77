"""The stranding checks: given the current catalog, routes and wallets opened by command,
when a new catalog is checked against them, then each change that would strand live state
is refused, naming what depends on it; a harmless change passes."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import msgspec
import yaml

from engine.catalog import load_catalog_text
from engine.catalog.stranding import Stranding, named, sims_in_use, stranding
from engine.domain.catalog import Catalog
from engine.domain.routing import SimRoute

from .conftest import Data

NOW = 1_800_000_000  # 2027-01-15
SIM = "894410000000000001"  # the base catalog's one subscription: w1, p1, pool1
MOVED = "894410000000000099"


@dataclass(frozen=True)
class Opened:
    currency: str
    open: bool = True


def build(data: Data) -> Catalog:
    return load_catalog_text(yaml.safe_dump(data, sort_keys=False), "test.yaml")


def with_plan_p2(base: Data) -> Data:
    data = copy.deepcopy(base)
    plan: dict[str, Any] = copy.deepcopy(data["plans"][0])
    plan["id"] = "p2"
    data["plans"].append(plan)
    return data


def route(
    iccid: str, wallet: str, plan: str, pool: str | None = None, end: int | None = None
) -> dict[str, dict[str, SimRoute]]:
    """One SIM's route, stayed since yesterday, until ``end``."""
    return {iccid: {wallet: SimRoute(iccid, wallet, ((NOW - 86_400, end),), plan, pool)}}


def test_the_same_catalog_strands_nothing(base: Data) -> None:
    assert stranding(build(base), build(base), {}, {}, NOW) == []


def test_sims_in_use_are_live_routes_and_active_subscriptions_no_route_replaces(
    base: Data,
) -> None:
    current = build(with_plan_p2(base))
    routes = {
        **route(MOVED, "w2", "p2"),
        **route("894410000000000077", "w1", "p1", end=NOW - 1),  # left before now
    }
    assert [(s.iccid, s.wallet, s.plan) for s in sims_in_use(current, routes, NOW)] == [
        (SIM, "w1", "p1"),
        (MOVED, "w2", "p2"),
    ]
    # A route of the subscription's own SIM and wallet replaces it (here: it has left).
    replaced = route(SIM, "w1", "p1", end=NOW - 1)
    assert sims_in_use(current, replaced, NOW) == []


def test_a_plan_removed_while_routed_sims_use_it_is_refused(base: Data) -> None:
    current = build(with_plan_p2(base))
    routes = route(MOVED, "w2", "p2")
    [problem] = stranding(current, build(base), routes, {}, NOW)
    assert (problem.kind, problem.subject) == ("plan_removed", "p2")
    assert problem.dependents == (f"{MOVED} (wallet w2)",)
    assert f"plan 'p2' is removed, but 1 SIM: {MOVED} (wallet w2) use it" in str(problem)
    # Once the SIM has left, the plan can go.
    assert stranding(current, build(base), route(MOVED, "w2", "p2", end=NOW), {}, NOW) == []


def test_a_plan_removed_while_an_old_subscription_still_uses_it_is_refused(base: Data) -> None:
    data = with_plan_p2(base)
    data["subscriptions"][0]["plan"] = "p2"
    new = copy.deepcopy(base)
    new["subscriptions"] = []  # the file no longer lists the SIM, but the wallet holds it
    [problem] = stranding(build(data), build(new), {}, {}, NOW)
    assert (problem.kind, problem.subject, problem.dependents) == (
        "plan_removed",
        "p2",
        (f"{SIM} (wallet w1)",),
    )


def test_a_wallets_currency_changed_is_refused_naming_its_sims(base: Data) -> None:
    new = copy.deepcopy(base)
    new["wallets"][0]["currency"] = "USD"
    new["plans"][0]["versions"][0]["currency"] = "USD"
    new["vouchers"] = []
    problems = stranding(build(base), build(new), route(MOVED, "w1", "p1"), {}, NOW)
    [problem] = [p for p in problems if p.kind == "currency_changed"]
    assert problem.subject == "w1" and problem.dependents == (SIM, MOVED)
    assert "wallet 'w1' changes currency from EUR to USD, but its balance and 2 SIMs" in str(
        problem
    )


def test_a_wallet_opened_by_command_keeps_its_currency_too(base: Data) -> None:
    new = copy.deepcopy(base)
    new["wallets"].append({"id": "w9", "currency": "USD"})
    [problem] = stranding(build(base), build(new), {}, {"w9": Opened("EUR")}, NOW)
    assert (problem.kind, problem.subject, problem.dependents) == ("currency_changed", "w9", ())
    assert "changes currency from EUR to USD, but its balance are in EUR" in problem.message


def test_a_pool_removed_while_sims_are_in_it_is_refused(base: Data) -> None:
    new = copy.deepcopy(base)
    new["pools"] = []
    new["subscriptions"][0].pop("pool")
    [problem] = stranding(build(base), build(new), {}, {}, NOW)
    assert (problem.kind, problem.subject, problem.dependents) == ("pool_removed", "pool1", (SIM,))
    assert "pool 'pool1' (wallet w1) is removed mid-cycle, but 1 SIM:" in problem.message
    # An empty pool can go.
    current = copy.deepcopy(base)
    current["subscriptions"][0].pop("pool")
    assert stranding(build(current), build(new), {}, {}, NOW) == []


def test_a_wallet_removed_while_it_has_sims_is_refused(base: Data) -> None:
    new = copy.deepcopy(base)
    new["wallets"] = [w for w in new["wallets"] if w["id"] != "w2"]
    routes = route(MOVED, "w2", "p1")
    [problem] = stranding(build(base), build(new), routes, {}, NOW)
    assert (problem.kind, problem.subject, problem.dependents) == ("wallet_removed", "w2", (MOVED,))
    assert f"wallet 'w2' is removed, but it has 1 SIM: {MOVED}" in problem.message
    # Still open by command, it is not removed by leaving the file.
    assert stranding(build(base), build(new), routes, {"w2": Opened("EUR")}, NOW) == []
    # Without SIMs it can go.
    assert stranding(build(base), build(new), {}, {}, NOW) == []


def test_many_dependents_are_counted_after_the_first_few() -> None:
    sims = [f"s{i}" for i in range(8)]
    assert named(sims, "SIM") == "8 SIMs: s0, s1, s2, s3, s4 and 3 more"
    assert named(["s0"], "SIM") == "1 SIM: s0"


def test_a_problem_is_plain_data() -> None:
    problem = Stranding("pool_removed", "pool1", ("s1",), "pool 'pool1' ...")
    assert msgspec.json.decode(msgspec.json.encode(problem), type=Stranding) == problem
