"""The ``subscriptions`` section: single SIMs and ICCID ranges, expanded one SIM each."""

from __future__ import annotations

import msgspec

from engine.domain.catalog import Plan, Pool, Subscription, Wallet

from .checks import check_subscription
from .reader import Ctx, Fields
from .values import _ICCID, iccid, ident, instant, int_between

SUBSCRIPTION_KEYS = (
    "iccid",
    "iccids",
    "wallet",
    "plan",
    "pool",
    "active_from",
    "active_to",
    "addons",
)
MAX_RANGE = 1_000_000


def read_subscriptions(
    ctx: Ctx,
    value: object,
    wallets: dict[str, Wallet],
    plans: dict[str, Plan],
    pools: dict[str, Pool],
) -> dict[str, Subscription]:
    """Every SIM's subscription. A catalog of a million SIMs written one by one repeats a
    few wallets, plans and pools: the fields an entry shares with an earlier one that had
    no issue (``fine``) are not read again, only its ICCID is (``_again``). ``owner``: ICCID
    -> path of its entry, or the index of a single SIM's (a path only if an issue names it).
    """
    out: dict[str, Subscription] = {}
    owner: dict[str, str | int] = {}
    fine: dict[tuple[object, ...], Subscription] = {}
    items = enumerate(value) if isinstance(value, list) else ctx.items("subscriptions", value)
    for index, item in items:
        shared = _shared(item)
        if shared is not None and _again(item, index, fine.get(shared), owner, out):
            continue
        path = f"subscriptions[{index}]" if isinstance(index, int) else index
        before = len(ctx.issues)
        f = ctx.mapping(path, item, SUBSCRIPTION_KEYS)
        if f is None:
            continue
        iccids, iccid_path = _iccids(ctx, f)
        wallet = f.req("wallet", ident)
        if wallet is not None and not ctx.refer(f.at("wallet"), "wallet", wallet):
            wallet = None
        plan = f.req("plan", ident)
        if plan is not None and not ctx.refer(f.at("plan"), "plan", plan):
            plan = None
        pool = f.maybe("pool", ident)
        if pool is not None and not ctx.refer(f.at("pool"), "pool", pool):
            pool = None
        active_from = f.opt("active_from", instant, 0)
        active_to = f.maybe("active_to", instant)
        if active_to is not None and active_to <= active_from:
            ctx.issue(f.at("active_to"), "must be later than active_from")
        addons = f.each("addons", ident)
        found = wallets.get(wallet or ""), plans.get(plan or ""), pools.get(pool or "")
        check_subscription(ctx, f, wallet, *found, addons)
        fresh = _claim(ctx, iccid_path, iccids, owner)
        if wallet is None or plan is None:
            continue
        for number in fresh:
            out[number] = Subscription(
                iccid=number,
                wallet=wallet,
                plan=plan,
                pool=pool,
                active_from=active_from,
                active_to=active_to,
                addons=tuple(addon for _, addon in addons),
            )
        if shared is not None and fresh and len(ctx.issues) == before:
            fine[shared] = out[fresh[0]]
    return out


def _again(
    item: object,
    index: int | str,
    known: Subscription | None,
    owner: dict[str, str | int],
    out: dict[str, Subscription],
) -> bool:
    """Whether a single SIM's entry was taken as ``known`` (the subscription of an earlier
    entry with the same fields and no issue): only its ICCID is new, and checked here."""
    if known is None:
        return False
    number = item["iccid"]  # type: ignore[index]
    if not isinstance(number, str) or not _ICCID.fullmatch(number) or number in owner:
        return False
    owner[number] = index
    out[number] = msgspec.structs.replace(known, iccid=number)
    return True


_PLAIN = frozenset(SUBSCRIPTION_KEYS) - {"iccids"}


def _shared(item: object) -> tuple[object, ...] | None:
    """What a one-SIM entry shares with others (all but its ICCID), as a key; ``None`` for
    a range or an entry the full reading must see (an unknown key, a value not plain)."""
    if not isinstance(item, dict) or "iccid" not in item or not item.keys() <= _PLAIN:
        return None
    addons = item.get("addons")
    if addons is not None:
        if not isinstance(addons, list) or not all(isinstance(a, str) for a in addons):
            return None
        addons = tuple(addons)
    get = item.get
    shared = (get("wallet"), get("plan"), get("pool"), get("active_from"), get("active_to"))
    for v in shared:
        if v is not None and type(v) is not str:
            return None
    return (*shared, addons)


def _iccids(ctx: Ctx, f: Fields) -> tuple[list[str], str]:
    """The ICCIDs of one entry (one SIM or a range) and the path to blame for them."""
    if f.has("iccid") and f.has("iccids"):
        ctx.issue(f.path, "give either 'iccid' (one SIM) or 'iccids' (a range), not both")
        return [], f.path
    if f.has("iccid"):
        number = f.req("iccid", iccid)
        return ([] if number is None else [number]), f.at("iccid")
    if not f.has("iccids"):
        ctx.issue(f.at("iccid"), "missing required key 'iccid' (or 'iccids' for a range)")
        return [], f.path
    path = f.at("iccids")
    r = ctx.mapping(path, f.raw("iccids"), ("first", "count"))
    if r is None:
        return [], path
    first = r.req("first", iccid)
    count = r.req("count", int_between(1, MAX_RANGE))
    if first is None or count is None:
        return [], path
    width = len(first)
    start = int(first)
    last = start + count - 1
    if len(str(last)) > width:
        ctx.issue(path, f"the range runs past {width} digits (its last ICCID would be {last})")
        return [], path
    # Same length as the first ICCID: leading zeros are kept.
    return [f"{n:0{width}d}" for n in range(start, last + 1)], path


def _where(owner: str | int) -> str:
    return f"subscriptions[{owner}].iccid" if isinstance(owner, int) else owner


def _claim(ctx: Ctx, path: str, iccids: list[str], owner: dict[str, str | int]) -> list[str]:
    """The ICCIDs not taken by an earlier entry; one issue per entry for the rest."""
    fresh: list[str] = []
    taken: list[str] = []
    for number in iccids:
        if number in owner:
            taken.append(number)
        else:
            owner[number] = path
            fresh.append(number)
    if len(iccids) == 1 and taken:
        ctx.issue(path, f"duplicate ICCID '{taken[0]}' (first at {_where(owner[taken[0]])})")
    elif taken:
        ctx.issue(
            path,
            f"{len(taken)} ICCIDs of this range are already listed, "
            f"from '{taken[0]}' (first at {_where(owner[taken[0]])})",
        )
    return fresh
