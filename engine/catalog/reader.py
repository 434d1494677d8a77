"""A small error-collecting reader over the plain data of a YAML document.

Every check records a ``CatalogIssue`` and carries on, so one run reports every mistake in
the file. A value that failed is returned as ``None`` (or the default), and the caller only
builds the domain object when all its parts are there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import CatalogIssue
from .values import describe, hint, suggest
from .yaml_source import Source, child_path

T = TypeVar("T")

_LAST_STEP = re.compile(r"(\[\d+\]|\.[^.\[]*|^[^.\[]*)$")


class Ctx:
    """The issues found so far, the lines of the document, and the ids declared so far."""

    def __init__(self, source: Source) -> None:
        self.file = source.file
        self.lines = source.lines
        self.issues: list[CatalogIssue] = []
        # kind ("zone", "wallet", ...) -> id -> path where it was declared. Sections are read
        # in dependency order, so a reference is checked against everything declared before.
        self.declared: dict[str, dict[str, str]] = {}
        for path, line in source.duplicate_keys:
            self.issue(path, "key written twice in the same mapping (YAML keeps the last)", line)

    def issue(self, path: str, message: str, line: int | None = None) -> None:
        where = self.line_of(path) if line is None else line
        self.issues.append(CatalogIssue(self.file, path, where, message))

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, or of its nearest written parent (a missing key's mapping)."""
        while path not in self.lines and path:
            parent = _LAST_STEP.sub("", path)
            path = "" if parent == path else parent
        return self.lines.get(path)

    def convert(self, path: str, value: object, convert: Callable[[object], T]) -> T | None:
        try:
            return convert(value)
        except ValueError as exc:
            self.issue(path, str(exc))
            return None

    def mapping(self, path: str, value: object, keys: Sequence[str]) -> Fields | None:
        """Read ``value`` as a mapping whose keys must be among ``keys``."""
        if not isinstance(value, dict):
            self.issue(path, f"expected a mapping, got {describe(value)}")
            return None
        data = {str(key): item for key, item in value.items()}
        for key in data:
            if key not in keys:
                self.issue(child_path(path, key), f"unknown key '{key}'{suggest(key, keys)}")
        return Fields(self, path, data)

    def entries(self, path: str, value: object) -> list[tuple[str, str, object]]:
        """``(key, path, value)`` of a mapping whose keys are names (zone ids, services...)."""
        if not isinstance(value, dict):
            self.issue(path, f"expected a mapping, got {describe(value)}")
            return []
        return [(str(key), child_path(path, str(key)), item) for key, item in value.items()]

    def items(self, path: str, value: object) -> list[tuple[str, object]]:
        """``(path, item)`` of a list; a missing list (null) is an empty one."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.issue(path, f"expected a list, got {describe(value)}")
            return []
        return [(f"{path}[{index}]", item) for index, item in enumerate(value)]

    def declare(self, kind: str, path: str, name: str) -> bool:
        """Record a new id of ``kind``; a second one with the same id is an issue."""
        seen = self.declared.setdefault(kind, {})
        if name in seen:
            self.issue(path, f"duplicate {kind} '{name}' (first at {seen[name]})")
            return False
        seen[name] = path
        return True

    def refer(self, path: str, kind: str, name: str) -> bool:
        """Check a reference to an id of ``kind`` declared earlier in the file."""
        known = self.declared.get(kind, {})
        if name in known:
            return True
        self.issue(path, f"unknown {kind} '{name}'{hint(name, known)}")
        return False


class Fields:
    """The keys of one mapping, read by name with a converter each."""

    def __init__(self, ctx: Ctx, path: str, data: dict[str, object]) -> None:
        self.ctx = ctx
        self.path = path
        self.data = data

    def at(self, key: str) -> str:
        return child_path(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> object:
        return self.data.get(key)

    def req(self, key: str, convert: Callable[[object], T]) -> T | None:
        """A required key; missing or null is an issue."""
        if not self.has(key):
            self.ctx.issue(self.at(key), f"missing required key '{key}'")
            return None
        return self.ctx.convert(self.at(key), self.data[key], convert)

    def opt(self, key: str, convert: Callable[[object], T], default: T) -> T:
        """An optional key; missing or null gives ``default`` (so does a bad value, reported)."""
        if not self.has(key):
            return default
        value = self.ctx.convert(self.at(key), self.data[key], convert)
        return default if value is None else value

    def maybe(self, key: str, convert: Callable[[object], T]) -> T | None:
        """An optional key without a default: ``None`` when absent."""
        if not self.has(key):
            return None
        return self.ctx.convert(self.at(key), self.data[key], convert)

    def each(self, key: str, convert: Callable[[object], T]) -> list[tuple[str, T]]:
        """``(path, value)`` of each good item of an optional list."""
        out: list[tuple[str, T]] = []
        for path, item in self.ctx.items(self.at(key), self.data.get(key)):
            value = self.ctx.convert(path, item, convert)
            if value is not None:
                out.append((path, value))
        return out
