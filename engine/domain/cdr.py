"""The usage record (CDR) as operators publish it: the engine's main public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from .commands import PRINTABLE
from .ids import cdr_key
from .units import Service

Rat = Literal["2G", "3G", "4G", "5G", "NB-IoT", "LTE-M"]


class Cdr(msgspec.Struct, frozen=True, gc=False):
    """One usage record. ``volume`` is bytes (data), messages (sms), seconds (voice) or units."""

    cdr_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=PRINTABLE)]
    iccid: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=PRINTABLE)]
    service: Service
    started_at: Annotated[datetime, msgspec.Meta(tz=True)]
    volume: int
    mcc: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{3}$")]
    mnc: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{2,3}$")]
    apn: Annotated[str, msgspec.Meta(max_length=256, pattern=PRINTABLE)] | None = None
    rat: Rat | None = None
    duration_s: int | None = None
    source: Annotated[str, msgspec.Meta(max_length=256, pattern=PRINTABLE)] | None = None

    @property
    def key(self) -> str:
        """The identity used for duplicate detection: ids are unique per source."""
        return cdr_key(self.source, self.cdr_id)
