"""JSON Schemas of the public records, generated from the Structs (never written by hand)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from .codec import Rejected
from .domain import Cdr, Command, Event

SCHEMAS: dict[str, object] = {
    "cdr.json": Cdr,
    "command.json": Command,
    "event.json": Event,
    "rejected.json": Rejected,
}


def render(kind: object) -> bytes:
    schema = msgspec.json.schema(kind)
    return msgspec.json.format(msgspec.json.encode(schema), indent=2) + b"\n"


def stale(directory: Path) -> list[str]:
    """Schema files in ``directory`` that differ from what the code generates."""
    return [
        name
        for name, kind in SCHEMAS.items()
        if not (directory / name).exists() or (directory / name).read_bytes() != render(kind)
    ]


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, kind in SCHEMAS.items():
        path = directory / name
        path.write_bytes(render(kind))
        written.append(path)
    return written
