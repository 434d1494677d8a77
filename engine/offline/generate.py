"""A realistic, deterministic CDR stream (and its commands) for a catalog.

Same catalog, arguments and seed give the same bytes. Devices differ in appetite (a few
heavy trackers, many quiet meters), traffic follows the day, most usage is at home with
some roaming, and a small share of records is deliberately bad so every rejection path
is exercised.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson

from ..domain import Catalog

START = datetime(2026, 9, 1, tzinfo=UTC)
SERVICE_MIX = (("data", 70), ("sms", 14), ("event", 11), ("voice", 5))
RAT_MIX = (("4G", 30), ("LTE-M", 25), ("NB-IoT", 20), ("5G", 10), ("3G", 10), ("2G", 5))
APNS = ("iot.telco", "telemetry.iot", "m2m.internet", "partner.acme")
APN_WEIGHTS = (50, 30, 15, 5)
FAULTS = (
    "malformed",
    "missing_field",
    "negative_volume",
    "unknown_sim",
    "unknown_zone",
    "duplicate",
)
OFFSETS = (timedelta(0), timedelta(hours=1), timedelta(hours=2), timedelta(hours=-5))


class GenerateError(ValueError):
    """Arguments the catalog cannot satisfy."""


def _networks(catalog: Catalog) -> dict[str, list[tuple[str, str]]]:
    """zone -> concrete networks (a country wildcard gets two plausible MNCs)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for zone in catalog.zones.values():
        nets: list[tuple[str, str]] = []
        for net in zone.networks:
            mcc, _, mnc = net.partition("-")
            nets.extend([(mcc, mnc)] if mnc else [(mcc, "01"), (mcc, "20")])
        out[zone.id] = nets
    return out


def _spread(catalog: Catalog) -> list[str]:
    """Every SIM, taking turns between wallets so a few SIMs already reach them all."""
    queues = [list(v) for v in catalog.sims_by_wallet.values() if v]
    out: list[str] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _pick(rng: random.Random, mix: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([m[0] for m in mix], weights=[m[1] for m in mix])[0]


def _volume(rng: random.Random, service: str, appetite: float) -> int:
    if service == "data":
        return max(0, int(rng.lognormvariate(12.3, 1.2) * appetite))
    if service == "voice":
        return rng.randint(3, 600)
    if service == "event":
        return rng.randint(1, 10)
    return 1


def generate_cdrs(
    catalog: Catalog, sims: int, cdrs: int, seed: int, days: int = 91, faults: float = 0.002
) -> Iterator[bytes]:
    """``cdrs`` JSON lines from the first ``sims`` SIMs of the catalog, in time order."""
    iccids = _spread(catalog)[:sims]
    if sims <= 0 or len(iccids) < sims:
        raise GenerateError(f"the catalog has {len(catalog.subscriptions)} SIMs; asked for {sims}")
    # One generator drawn in a fixed order: the helpers below must keep their draws in the
    # order they are made here, or the same seed would give other bytes.
    rng = random.Random(seed)
    networks = _networks(catalog)
    profiles = _profiles(catalog, iccids, rng)
    previous: bytes | None = None
    for n, t in enumerate(_instants(rng, cdrs, days)):
        if previous is not None and rng.random() < faults:
            fault = FAULTS[rng.randrange(len(FAULTS))]
            if fault == "duplicate":
                yield previous
                continue
        else:
            fault = ""
        iccid = iccids[int(rng.paretovariate(1.2) * 7919 + n) % len(iccids)]
        record = _record(rng, f"{seed}-{n:09d}", iccid, profiles[iccid], networks, t)
        previous = _spoil(record, fault, rng)
        yield previous


Profile = tuple[str | None, dict[str, list[str]], float, timedelta]
"""A SIM's habits: home zone, the zones each service is rated in, appetite, UTC offset."""


def _profiles(catalog: Catalog, iccids: list[str], rng: random.Random) -> dict[str, Profile]:
    profiles = {}
    for iccid in iccids:
        sub = catalog.subscriptions[iccid]
        version = catalog.plans[sub.plan].versions[-1]
        zones = {s: sorted(rates) for s, rates in version.rates.items() if rates}
        everywhere = sorted({z for zs in zones.values() for z in zs})
        home = everywhere[rng.randrange(len(everywhere))] if everywhere else None
        appetite = rng.paretovariate(2.5)
        profiles[iccid] = (home, zones, appetite, OFFSETS[rng.randrange(len(OFFSETS))])
    return profiles


def _instants(rng: random.Random, cdrs: int, days: int) -> list[float]:
    """Seconds into the period with a day/night rhythm, sorted: the file is in time order."""
    span = days * 86400
    instants: list[float] = []
    while len(instants) < cdrs:
        t = rng.random() * span
        hour = (t % 86400) / 3600
        if rng.random() < (0.35 if hour < 6 else 1.0):
            instants.append(t)
    instants.sort()
    return instants


def _record(
    rng: random.Random,
    cdr_id: str,
    iccid: str,
    profile: Profile,
    networks: dict[str, list[tuple[str, str]]],
    t: float,
) -> dict[str, object]:
    home, zones, appetite, offset = profile
    service = _pick(rng, SERVICE_MIX)
    if service not in zones:
        service = "data" if "data" in zones else next(iter(zones), "data")
    # Mostly at home; roaming (or a service home does not rate) goes where it is rated.
    candidates = zones.get(service, [])
    zone = home if home in candidates and rng.random() < 0.85 else None
    if zone is None and candidates:
        zone = candidates[rng.randrange(len(candidates))]
    mcc, mnc = rng.choice(networks.get(zone or "", [("262", "01")]) or [("262", "01")])
    started = (START + timedelta(seconds=t)).astimezone(timezone(offset))
    record: dict[str, object] = {
        "cdr_id": cdr_id,
        "iccid": iccid,
        "service": service,
        "started_at": started.isoformat(timespec="seconds"),
        "volume": _volume(rng, service, appetite),
        "mcc": mcc,
        "mnc": mnc,
        "apn": rng.choices(APNS, APN_WEIGHTS)[0] if service == "data" else None,
        "rat": _pick(rng, RAT_MIX),
        "source": "gen",
    }
    if service == "voice":
        record["duration_s"] = record["volume"]
    return record


def _spoil(record: dict[str, object], fault: str, rng: random.Random) -> bytes:
    if fault == "malformed":
        return orjson.dumps(record)[: rng.randint(5, 40)]
    if fault == "missing_field":
        record.pop("volume")
    elif fault == "negative_volume":
        record["volume"] = -int(record["volume"] or 1) - 1  # type: ignore[call-overload]
    elif fault == "unknown_sim":
        record["iccid"] = "8999" + str(rng.randrange(10**15)).zfill(15)
    elif fault == "unknown_zone":
        record["mcc"], record["mnc"] = "999", "99"
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def generate_commands(catalog: Catalog, seed: int, days: int = 91) -> Iterator[bytes]:
    """Daily clock ticks per wallet, top-ups and voucher redemptions over the same period."""
    rng = random.Random(seed + 1)
    for day in range(days + 1):
        at = START + timedelta(days=day)
        for wallet in catalog.wallets.values():
            yield _command("Tick", f"tick-{wallet.id}-{at:%Y%m%d}", wallet.id, at)
            if wallet.auto_top_up is not None and day % 14 == 7:
                amount = f"{wallet.auto_top_up.amount // 1_000_000}.00"
                yield _command(
                    "TopUp",
                    f"topup-{wallet.id}-{at:%Y%m%d}",
                    wallet.id,
                    at + timedelta(hours=9),
                    amount=amount,
                    currency=wallet.currency,
                )
    for i, voucher in enumerate(sorted(catalog.vouchers.values(), key=lambda v: v.code)):
        at = START + timedelta(days=rng.randrange(max(1, days)), hours=12)
        at = min(at, START + timedelta(days=days))
        yield _command(
            "RedeemVoucher", f"voucher-{voucher.code}", voucher.wallet, at, code=voucher.code
        )
        if i == 0:  # a second redemption of the same code: must be rejected, not credited
            later = at + timedelta(hours=1)
            yield _command(
                "RedeemVoucher",
                f"voucher-{voucher.code}-again",
                voucher.wallet,
                later,
                code=voucher.code,
            )


def _command(kind: str, command_id: str, wallet_id: str, at: datetime, **fields: object) -> bytes:
    body: dict[str, object] = {
        "type": kind,
        "command_id": command_id,
        "wallet_id": wallet_id,
        "at": at.isoformat(),
    }
    body.update(fields)
    return orjson.dumps(body)


def write_lines(path: Path | None, lines: Iterator[bytes]) -> int:
    count = 0
    handle = path.open("wb") if path is not None else sys.stdout.buffer
    try:
        for line in lines:
            handle.write(line + b"\n")
            count += 1
    finally:
        if path is not None:
            handle.close()
    return count
