"""Catalogs for tests and benchmarks that need more wallets than the example has."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import yaml

EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def spread_catalog(path: Path, copies: int) -> Path:
    """The example catalog with every wallet split into ``copies`` wallets (``acme``,
    ``acme-1``, ...), each with its own pools and an equal share of the SIM ranges.

    The example's four wallets hash to only three of eight partitions; a few dozen wallets
    spread over all of them, so several workers each get a share of the traffic.
    """
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CATALOG.read_text())

    def name(base: str, k: int) -> str:
        return base if k == 0 else f"{base}-{k}"

    pools_of: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for pool in data["pools"]:
        pools_of[pool["wallet"]].append(pool)
    wallets, pools = [], []
    for wallet in data["wallets"]:
        for k in range(copies):
            wallets.append({**wallet, "id": name(wallet["id"], k)})
            for pool in pools_of[wallet["id"]]:
                pools.append({**pool, "id": name(pool["id"], k), "wallet": name(wallet["id"], k)})
    subscriptions = []
    for sub in data["subscriptions"]:
        iccids = sub.get("iccids")
        if iccids is None:  # a single SIM stays with the first copy
            subscriptions.append(sub)
            continue
        share, first = iccids["count"] // copies, int(iccids["first"])
        for k in range(copies):
            count = share if k < copies - 1 else iccids["count"] - share * (copies - 1)
            part = {**sub, "wallet": name(sub["wallet"], k)}
            if "pool" in sub:
                part["pool"] = name(sub["pool"], k)
            part["iccids"] = {"first": str(first + k * share).zfill(20), "count": count}
            subscriptions.append(part)
    data.update(wallets=wallets, pools=pools, subscriptions=subscriptions)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
