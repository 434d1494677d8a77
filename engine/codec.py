"""The one serializer: JSON in and out of the engine, with msgspec.

CDRs, commands and events are decoded straight into typed Structs; anything that does not
decode becomes a ``Rejected`` record that keeps the original bytes and says why.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import msgspec

from .domain.catalog import Catalog
from .domain.cdr import Cdr
from .domain.commands import Command
from .domain.events import Event
from .domain.routing import wallet_of

encoder = msgspec.json.Encoder()
_cdr_decoder = msgspec.json.Decoder(Cdr)
_command_decoder = msgspec.json.Decoder(Command)
_event_decoder = msgspec.json.Decoder(Event)


class Rejected(msgspec.Struct, frozen=True, omit_defaults=True):
    """A record that could not be rated: what arrives on ``cdr.rejected``.

    ``raw`` is the original record when it is UTF-8 text, else ``raw_base64`` holds its bytes.
    ``origin`` says where it came from: ``file:line`` offline, ``topic/partition@offset`` in
    the stream.
    """

    reason: str
    detail: str
    origin: str = ""
    raw: str | None = None
    raw_base64: str | None = None
    cdr_id: str | None = None
    iccid: str | None = None
    wallet_id: str | None = None


class Decision(msgspec.Struct, frozen=True, gc=False):
    """One record on ``wallet.events``: every event decided from one input, together.

    A decision travels whole, so a crash can never leave half of it behind; ``origin`` names
    the input it answers (``topic``, ``partition``, ``offset`` of the record as it first
    entered Kafka), which is how a restarted worker knows what it has already decided. The
    input itself rides along (``cdr`` or ``command``) so the event store keeps it for replay.
    """

    wallet_id: str
    input: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    events: tuple[Event, ...]
    cdr: Cdr | None = None
    command: Command | None = None

    @property
    def item(self) -> Cdr | Command | None:
        """The input decided on, carried so that replay can re-rate it from the store."""
        return self.cdr if self.cdr is not None else self.command


_decision_decoder = msgspec.json.Decoder(Decision)


def decode_decision(raw: bytes) -> Decision:
    return _decision_decoder.decode(raw)


def raw_fields(raw: bytes) -> dict[str, str]:
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}


def _reason(exc: msgspec.MsgspecError) -> str:
    if isinstance(exc, msgspec.ValidationError):
        return "missing_field" if "missing required field" in str(exc) else "invalid_field"
    return "malformed"


def decode_cdr(raw: bytes, origin: str = "") -> Cdr | Rejected:
    """A CDR, or a rejection (``malformed``, ``missing_field``, ``invalid_field``,
    ``negative_volume``) that keeps ``raw``."""
    try:
        cdr = _cdr_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        return Rejected(_reason(exc), str(exc), origin, **raw_fields(raw))
    if cdr.volume < 0:
        return Rejected(
            "negative_volume",
            f"volume {cdr.volume} is negative",
            origin,
            cdr_id=cdr.cdr_id,
            iccid=cdr.iccid,
            **raw_fields(raw),
        )
    return cdr


def route_cdr(
    catalog: Catalog, moves: Mapping[str, str], cdr: Cdr, origin: str = "", raw: bytes | None = None
) -> str | Rejected:
    """The wallet that rates ``cdr``, or its ``unknown_sim`` rejection (with ``raw`` if known)."""
    wallet = wallet_of(catalog, moves, cdr.iccid)
    if wallet is not None:
        return wallet
    fields = raw_fields(raw) if raw is not None else {}
    return Rejected(
        "unknown_sim",
        f"no subscription for ICCID {cdr.iccid}",
        origin,
        cdr_id=cdr.cdr_id,
        iccid=cdr.iccid,
        **fields,
    )


def decode_command(raw: bytes) -> Command:
    """A command; raises ``msgspec.MsgspecError`` with the path of what is wrong."""
    return _command_decoder.decode(raw)


def decode_event(raw: bytes) -> Event:
    return _event_decoder.decode(raw)


def decode_input(key: str, raw: bytes) -> Cdr | Command:
    """An input as the event store keeps it: its key (``cdr:`` or ``cmd:``) says which."""
    return _cdr_decoder.decode(raw) if key.startswith("cdr:") else _command_decoder.decode(raw)


def encode(obj: Any) -> bytes:
    return encoder.encode(obj)
