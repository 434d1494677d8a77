"""Read a catalog's YAML text, keeping the line each value was written on.

The document is composed once into PyYAML's node tree (which carries line marks) and
constructed from that same tree; a walk over the nodes maps every path inside the document
(``plans[0].versions[1].rates``) to its 1-based line, so each issue can point at its line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import CatalogError, CatalogIssue

_TIMESTAMP = "tag:yaml.org,2002:timestamp"

MAX_BYTES = 160 * 1024 * 1024
"""Largest catalog file read (a JSON catalog of 1,000,000 SIMs written one by one, about
90 MB, fits)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (a catalog needs about 8)."""
MAX_VALUES = 5_000_000
"""Most values (scalars, mappings, lists) a document may hold once its aliases are
expanded: an alias bomb (a few lines that expand to billions of values) is refused before
anything is built from it."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps unquoted timestamps as strings, and refuses nesting deeper
    than ``MAX_DEPTH`` while composing (PyYAML recurses once per level, so 10,000 levels
    would end in a RecursionError).

    YAML 1.1 would turn ``2026-01-01T00:00:00Z`` into a datetime, and an impossible date
    such as ``2026-02-30`` into a bare ValueError with no line; the catalog parses instants
    itself, with the path and line of the value.
    """

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                problem = f"mappings and lists nest deeper than {MAX_DEPTH} levels"
                raise yaml.composer.ComposerError(None, None, problem, mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Source:
    """A parsed document: the plain data, each path's line, and the keys written twice."""

    file: str
    data: object
    lines: dict[str, int] = field(default_factory=dict)
    duplicate_keys: list[tuple[str, int]] = field(default_factory=list)
    """``(path, line)`` of each key written a second time in the same mapping."""


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def read_json(path: str | Path) -> Source | None:
    """``parse_json`` of the file at ``path``; ``None`` for anything ``read_yaml`` should
    read (and report on), an unreadable file among them."""
    try:
        if Path(path).stat().st_size > MAX_BYTES:
            return None
        return parse_json(Path(path).read_text(encoding="utf-8-sig"), str(path))
    except (OSError, UnicodeDecodeError):
        return None


def read_yaml(path: str | Path) -> Source:
    """Parse ``path``; an unreadable file or a YAML syntax error is a ``CatalogError``."""
    file = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_BYTES:
            problem = f"the file is {size:,} bytes, over the limit of {MAX_BYTES:,}"
            raise CatalogError([CatalogIssue(file, "", None, problem)])
        text = Path(path).read_text(encoding="utf-8-sig")  # a leading BOM is not content
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CatalogError(
            [CatalogIssue(file, "", None, f"cannot read the file: {reason}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise CatalogError(
            [CatalogIssue(file, "", None, f"not UTF-8 text: {exc.reason}")]
        ) from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> Source:
    """Parse the YAML ``text`` of a document named ``file`` (in every issue): a catalog
    revision's source, read from the stream rather than from a file. A YAML syntax error
    is a ``CatalogError``."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        problem = f"the text is {size:,} bytes, over the limit of {MAX_BYTES:,}"
        raise CatalogError([CatalogIssue(file, "", None, problem)])
    text = text.removeprefix("\ufeff")  # a leading BOM is not content
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, file)
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise CatalogError([CatalogIssue(file, "", line, f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([CatalogIssue(file, "", None, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    source = Source(file, data)
    if node is not None:
        _walk(node, "", source, set())
    return source


class _Duplicate(Exception):
    """A JSON object with a key written twice: the YAML path reports it, with its line."""


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate
    return out


def parse_json(text: str, file: str) -> Source | None:
    """The fast path for a catalog written in JSON (a JSON document is a YAML one): parsed
    by the C JSON reader in about a second for a million SIMs, where PyYAML's node tree
    takes minutes and gigabytes. Without lines: ``None`` (read it as YAML) unless the text
    is a JSON object without a key written twice, and the loader reads it again as YAML
    when it finds an issue, so every issue still names its line."""
    body = text.removeprefix("\ufeff").lstrip()
    if not body.startswith("{"):
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return None  # refused by parse_yaml, with its message
    try:
        data = json.loads(
            body, object_pairs_hook=_pairs, parse_constant=_no_constant, parse_float=_as_yaml
        )
    except (ValueError, _Duplicate, RecursionError):
        return None
    return Source(file, data)


def _as_yaml(literal: str) -> object:
    """A JSON number with a fraction or exponent, as YAML 1.1 reads it (``1e3`` is text)."""
    return yaml.load(literal, Loader=_Loader)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not YAML")  # NaN, Infinity: JSON extensions YAML reads as text


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse a document whose aliases expand to more than ``MAX_VALUES`` values, or that
    refers to itself, before it is built: counted over the composed graph, each shared node
    once, so an alias bomb is measured in microseconds, not expanded."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            size = 1 + sum(sizes[id(child)] for child in children)
            if size > MAX_VALUES:
                line = node.start_mark.line + 1
                problem = f"aliases expand to more than {MAX_VALUES:,} values"
                raise CatalogError([CatalogIssue(file, "", line, problem)])
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in active:
            line = node.start_mark.line + 1
            raise CatalogError([CatalogIssue(file, "", line, "an alias refers to itself")])
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _walk(node: yaml.Node, path: str, source: Source, active: set[int]) -> None:
    """Record the line of ``node`` at ``path`` and of everything under it.

    ``active`` holds the nodes on the way down, so a recursive alias cannot loop forever.
    """
    source.lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in active:
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            sub = child_path(path, key)
            if key in seen:
                # PyYAML silently keeps the last value; a catalog says so, at the second key.
                source.duplicate_keys.append((sub, key_node.start_mark.line + 1))
            seen.add(key)
            source.lines.setdefault(sub, key_node.start_mark.line + 1)
            _walk(value_node, sub, source, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, f"{path}[{index}]", source, active)
    active.discard(id(node))
