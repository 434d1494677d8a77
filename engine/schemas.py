"""JSON Schemas of the public records, generated from the Structs (never written by hand).

``event.json`` also describes the events' former names (``codec.RENAMED``), marked
``deprecated``: stored events still carry them and still decode, new ones never do.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import msgspec

from .codec import RENAMED, Rejected
from .domain import Cdr, Command, Event

SCHEMAS: dict[str, object] = {
    "cdr.json": Cdr,
    "command.json": Command,
    "event.json": Event,
    "rejected.json": Rejected,
}


def render(kind: object) -> bytes:
    schema = _normalised(msgspec.json.schema(kind))
    if kind is Event:
        schema = _with_former_names(schema)
    return msgspec.json.format(msgspec.json.encode(schema), indent=2) + b"\n"


def _with_former_names(schema: dict[str, Any]) -> dict[str, Any]:
    """The event schema with each former name beside its event: the same fields under the
    old tag, ``deprecated``, so that a stored event of that name validates."""
    defs = schema["$defs"]
    mapping = schema["discriminator"]["mapping"]
    for old, new in RENAMED.items():
        former = dict(defs[new])
        former["title"] = old
        former["description"] = (
            f"Former name of {new}: events stored under it still decode, as {new}; "
            "it is never written."
        )
        former["deprecated"] = True
        former["properties"] = {**former["properties"], "type": {"enum": [old]}}
        defs[old] = former
        ref = {"$ref": f"#/$defs/{old}"}
        refs = schema["anyOf"]
        refs.insert(refs.index({"$ref": f"#/$defs/{new}"}) + 1, ref)
        mapping[old] = ref["$ref"]
    return schema


def _normalised(node: Any) -> Any:
    """The schema with every ``description`` cleaned by ``inspect.cleandoc``.

    msgspec copies docstrings into descriptions, and whether it dedents them depends on its
    version (0.23 does, 0.22 did not); cleaning them here makes the files a function of our
    code alone.
    """
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _normalised(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_normalised(item) for item in node]
    return node


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
