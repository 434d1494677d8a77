"""The one serializer: JSON in and out of the engine, with msgspec.

CDRs, commands and events are decoded straight into typed Structs; anything that does not
decode becomes a ``Rejected`` record that keeps the original bytes and says why.

Events are stored and published forever, so every event decoded here (from the store, the
sink, recovery from ``wallet.events`` and replay) that the current types refuse goes through
``upcast``: an event stored under a former name (``FORMER_NAMES``) reads as the event it was
renamed to. What is stored is never rewritten; only new events are written under the new names.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Any, TypedDict, TypeVar

import msgspec

from .domain.cdr import Cdr, Rat
from .domain.commands import Command
from .domain.decision import Decision
from .domain.events import FORMER_NAMES, Event
from .domain.ids import is_cdr
from .domain.units import Service

encoder = msgspec.json.Encoder()
T = TypeVar("T")
_cdr_decoder = msgspec.json.Decoder(Cdr)
_command_decoder = msgspec.json.Decoder(Command)
_event_decoder = msgspec.json.Decoder(Event)


def tag(event_type: type) -> str:
    """The type tag an event class is written with."""
    return str(event_type.__struct_config__.tag)  # type: ignore[attr-defined]


RENAMED: dict[str, str] = {old: tag(new) for old, new in FORMER_NAMES.items()}
"""Former event type tag -> the tag it is read as."""

# Each former name, quoted as a tag is; a payload without one (nearly all) is decoded as is.
_FORMER = tuple(f'"{old}"'.encode() for old in RENAMED)
# Only a ``type`` key's value is renamed: inside a JSON string the quotes around ``type``
# would be escaped, so a text that mentions a former name is left as it is.
_FORMER_TAG = re.compile(
    rb'("type"\s*:\s*")(' + b"|".join(re.escape(old.encode()) for old in RENAMED) + rb')"'
)


def _renamed(match: re.Match[bytes]) -> bytes:
    return match.group(1) + RENAMED[match.group(2).decode()].encode() + b'"'


def upcast(raw: bytes) -> bytes:
    """``raw`` (an event, or a decision holding events) with every former type tag replaced
    by the current one; the same bytes when there is none."""
    if not any(old in raw for old in _FORMER):
        return raw
    return _FORMER_TAG.sub(_renamed, raw)


def _decode_upcasting(decoder: msgspec.json.Decoder[T], raw: bytes) -> T:
    """``raw`` decoded, upcast first only when the decoder refused it: searching every
    payload for former names would cost half as much again as decoding it, and only events
    stored before a rename carry one (their unknown tag is refused at once)."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        upcasted = upcast(raw)
        if upcasted is raw:
            raise
        return decoder.decode(upcasted)


def current_type(name: str) -> str:
    """The current tag of an event type stored as ``name`` (a former name or a current one)."""
    return RENAMED.get(name, name)


def stored_names(*current: str) -> tuple[str, ...]:
    """The names events of the ``current`` tags may be stored under: each tag, then its
    former names."""
    out: list[str] = []
    for name in current:
        out += [name, *(old for old, new in RENAMED.items() if new == name)]
    return tuple(out)


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
    raw_length: int | None = None
    """Set when ``raw`` / ``raw_base64`` keep only a prefix: the length of the whole record."""
    raw_sha256: str | None = None
    """Set with ``raw_length``: the sha256 (hex) of the whole record, to match it later."""


MAX_INPUT_BYTES = 64 * 1024
"""Largest CDR or command record decoded; a larger one is rejected (``too_large``) unread."""
MAX_DEPTH = 16
"""Deepest nesting of arrays and objects decoded (a CDR has 1, a command at most 3); a
deeper record is rejected (``too_deep``) before the parser sees it, which would otherwise
recurse until it failed."""
RAW_PREFIX_BYTES = 4096
"""Bytes of a record kept in a rejection that would be too large with all of them."""
REJECTION_MAX_BYTES = 900_000
"""Largest rejection record written (Kafka's default limit is about 1 MiB)."""


class RawFields(TypedDict, total=False):
    raw: str
    raw_base64: str


def raw_fields(raw: bytes) -> RawFields:
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}


_OPEN_ARRAY, _OPEN_OBJECT = ord("["), ord("{")


def _flat(raw: bytes) -> bool:
    """Whether ``raw`` holds no ``[`` and no ``{`` but at its first byte, as a CDR's line
    does: it then nests one level at most. Looking for a byte is a ``memchr``; counting one
    reads every byte in a loop, and the two counts cost a CDR twice as much. The bytes are
    asked for as integers: ``bytes.__contains__`` tries its operand as an integer first, and
    for a ``bytes`` operand the ``TypeError`` it makes and clears costs more than a count."""
    return _OPEN_ARRAY not in raw and raw.rfind(_OPEN_OBJECT) < 1


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``raw`` nest deeper than ``limit`` (brackets inside
    strings do not count). A flat record, and one with no more brackets than ``limit``, is
    let through before the walk, so ordinary records cost next to nothing."""
    if _flat(raw) or raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x5B or byte == 0x7B:  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte == 0x5D or byte == 0x7D:  # ] }
            depth -= 1
    return False


def screen(raw: bytes, origin: str = "") -> Rejected | None:
    """The rejection of a record too large or too deeply nested to parse, else ``None``."""
    if len(raw) > MAX_INPUT_BYTES:
        detail = f"record of {len(raw)} bytes is over the limit of {MAX_INPUT_BYTES}"
        return fit(Rejected("too_large", detail, origin, **raw_fields(raw)), RAW_PREFIX_BYTES)
    if _nesting_exceeds(raw, MAX_DEPTH):
        detail = f"arrays and objects nest deeper than {MAX_DEPTH} levels"
        return fit(Rejected("too_deep", detail, origin, **raw_fields(raw)), RAW_PREFIX_BYTES)
    return None


def fit(rejection: Rejected, limit: int = REJECTION_MAX_BYTES) -> Rejected:
    """``rejection``, or, when it would encode to more than ``limit`` bytes, the same with
    only a prefix of the record (and of the detail) plus the record's length and sha256."""
    if len(encoder.encode(rejection)) <= limit:
        return rejection
    if rejection.raw is not None:
        whole = rejection.raw.encode("utf-8")
    elif rejection.raw_base64 is not None:
        whole = base64.b64decode(rejection.raw_base64)
    else:
        whole = b""
    keep = min(RAW_PREFIX_BYTES, max(0, limit // 8))
    prefix = whole[:keep]
    fields: RawFields = {}
    if rejection.raw is not None:  # text stays text, cut at a whole character
        fields = {"raw": prefix.decode("utf-8", errors="ignore")}
    elif whole:
        fields = {"raw_base64": base64.b64encode(prefix).decode("ascii")}
    return msgspec.structs.replace(
        rejection,
        detail=rejection.detail[:keep],
        raw=fields.get("raw"),
        raw_base64=fields.get("raw_base64"),
        cdr_id=_clip(rejection.cdr_id, keep),
        iccid=_clip(rejection.iccid, keep),
        wallet_id=_clip(rejection.wallet_id, keep),
        raw_length=len(whole),
        raw_sha256=hashlib.sha256(whole).hexdigest(),
    )


def _clip(value: str | None, keep: int) -> str | None:
    return None if value is None else value[:keep]


def internal_error(
    exc: BaseException,
    origin: str,
    raw: bytes,
    cdr_id: str | None = None,
    iccid: str | None = None,
    wallet_id: str | None = None,
) -> Rejected:
    """The rejection of an input whose decoding or decision failed unexpectedly: the input
    is kept (so nothing is lost) and the partition goes on."""
    detail = f"{type(exc).__name__}: {exc}"[:1000]
    rejection = Rejected(
        "internal_error",
        detail,
        origin,
        cdr_id=cdr_id,
        iccid=iccid,
        wallet_id=wallet_id,
        **raw_fields(raw),
    )
    return fit(rejection)


def _reason(exc: msgspec.MsgspecError) -> str:
    if isinstance(exc, msgspec.ValidationError):
        return "missing_field" if "missing required field" in str(exc) else "invalid_field"
    return "malformed"


class UncheckedCdr(msgspec.Struct, frozen=True, gc=False):
    """A CDR's fields, typed as ``Cdr`` has them but for its patterns, lengths and time
    zone (``checked_cdr`` asks those): msgspec matches a pattern with a regular expression per
    field, which took two thirds of decoding a record."""

    cdr_id: str
    iccid: str
    service: Service
    started_at: datetime
    volume: int
    mcc: str
    mnc: str
    apn: str | None = None
    rat: Rat | None = None
    duration_s: int | None = None
    source: str | None = None


_unchecked_decoder = msgspec.json.Decoder(UncheckedCdr)


def checked_cdr(c: UncheckedCdr) -> Cdr | None:
    """``c`` as the ``Cdr`` the typed decoder gives, when plain string tests show that every
    constraint of ``Cdr`` holds; ``None`` when one may not (the typed decoder then says).

    Each test implies its constraint: no character of a printable string is a control
    character (``PRINTABLE``), and three ASCII decimals match ``^[0-9]{3}$``.
    """
    cdr_id, iccid, mcc, mnc, apn, source = c.cdr_id, c.iccid, c.mcc, c.mnc, c.apn, c.source
    if (
        0 < len(cdr_id) <= 256
        and 0 < len(iccid) <= 32
        and len(mcc) == 3
        and 2 <= len(mnc) <= 3
        and (apn is None or len(apn) <= 256)
        and (source is None or len(source) <= 256)
        and (digits := mcc + mnc).isascii()
        and digits.isdecimal()
        and f"{cdr_id}{iccid}{apn or ''}{source or ''}".isprintable()
        and c.started_at.tzinfo is not None
    ):
        return Cdr(*msgspec.structs.astuple(c))
    return None


def typed_cdr(raw: bytes) -> Cdr:
    """Exactly what ``Cdr``'s own decoder makes of ``raw``: the record, or its error raised.

    The record is decoded without its string constraints first and tested by plain string
    tests (``checked_cdr``); one they do not clear (or that does not decode so) is decoded by
    ``Cdr``'s decoder, whose answer is then the one given.
    """
    try:
        found = checked_cdr(_unchecked_decoder.decode(raw))
    except msgspec.MsgspecError:
        found = None
    return _cdr_decoder.decode(raw) if found is None else found


class _UncheckedDecision(Decision, frozen=True, gc=False):
    """A ``Decision`` with its CDR as ``UncheckedCdr`` (in the same place): without ``Cdr``'s
    regular expressions, half of the whole decode. Never handed out as a ``Decision``."""

    cdr: UncheckedCdr | None = None  # type: ignore[assignment]


_decision_decoder = msgspec.json.Decoder(Decision)
_unchecked_decision_decoder = msgspec.json.Decoder(_UncheckedDecision)


def decode_decision(raw: bytes) -> Decision:
    """A ``wallet.events`` record as ``Decision``'s decoder (upcasting) reads it, or its error.
    Its CDR is cleared by the string tests (``checked_cdr``); a record not decoded or cleared
    so is read by ``Decision``'s decoder, whose answer is then the one given."""
    try:
        found = _unchecked_decision_decoder.decode(raw)
    except msgspec.MsgspecError:
        return _decode_upcasting(_decision_decoder, raw)
    cdr = None if found.cdr is None else checked_cdr(found.cdr)
    if cdr is None and found.cdr is not None:
        return _decision_decoder.decode(raw)
    wallet_id, key, topic, partition, offset, events, _, command, revision = (
        msgspec.structs.astuple(found)
    )
    return Decision(wallet_id, key, topic, partition, offset, events, cdr, command, revision)


def decode_cdr(raw: bytes, origin: str = "") -> Cdr | Rejected:
    """A CDR, or a rejection (``malformed``, ``missing_field``, ``invalid_field``,
    ``negative_volume``, ``too_large``, ``too_deep``) that keeps ``raw``."""
    if len(raw) > MAX_INPUT_BYTES or not _flat(raw):  # a CDR's line is flat: no screen
        screened = screen(raw, origin)
        if screened is not None:
            return screened
    try:
        cdr = typed_cdr(raw)
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


def decode_command(raw: bytes) -> Command:
    """A command; raises ``msgspec.MsgspecError`` with the path of what is wrong."""
    return _command_decoder.decode(raw)


def read_command(raw: bytes, origin: str = "") -> Command | Rejected:
    """A command, or its rejection (``malformed_command``, ``too_large``, ``too_deep``)
    that keeps ``raw``."""
    screened = screen(raw, origin)
    if screened is not None:
        return screened
    try:
        return _command_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        return Rejected("malformed_command", str(exc)[:1000], origin, **raw_fields(raw))


def decode_event(raw: bytes) -> Event:
    return _decode_upcasting(_event_decoder, raw)


def decode_input(key: str, raw: bytes) -> Cdr | Command:
    """An input as the event store keeps it: its key (``cdr:`` or ``cmd:``) says which."""
    return typed_cdr(raw) if is_cdr(key) else _command_decoder.decode(raw)


def encode(obj: Any) -> bytes:
    return encoder.encode(obj)
