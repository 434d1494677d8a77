"""The check that refuses a library version the engine's overrides were not written for.

faust_compat.py and aiokafka_compat.py reach into Faust's and aiokafka's private API,
which changes between releases without notice. Each names the versions it was read and
tested against and calls `check_version` as it is imported, so a worker with any other
version installed stops at once, before an override could silently do nothing.
"""

from __future__ import annotations

import re

Span = tuple[tuple[int, ...], tuple[int, ...]]
"""Versions from the first, up to (excluding) the second."""


class UnsupportedVersion(RuntimeError):
    """The installed version of a library is one the overrides were not written for."""


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def check_version(installed: str, package: str, supported: Span, overrides: str) -> None:
    """Raise `UnsupportedVersion` unless ``installed`` is within ``supported``;
    ``overrides``: the module (dotted name) that overrides ``package``."""
    low, high = supported
    if not low <= _release(installed) < high:
        span = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
        where = overrides.replace(".", "/") + ".py"
        raise UnsupportedVersion(
            f"{package} {installed} is installed, but {where} overrides its private API "
            f"as it is in {package}{span}: install a version in that range (make setup "
            "installs the locked one)"
        )
