"""A persistent map of input keys to instants that grows by appending: a dedup generation.

A wallet remembers every record it rates (``dedup.remember``): one insert per record into a
map of up to a window's keys. A persistent hash map (``immutables.Map``) copies the nodes on
the key's path at each insert, and each node is a container the garbage collector walks. A
`KeyLog` is a dict of keys to instants and a list of the keys in the order they came, which
every version of the log shares; a version is those two and its length ``size``, and holds
the first ``size`` keys. So:

- adding a key to the newest version appends to the shared dict and list, and makes a
  version one longer: no copy, and nothing for the collector (a dict of strings to integers
  is not tracked);
- what a version holds never changes: a key appended later lies at or past its ``size`` in
  the list, and it reads as absent there;
- adding a key to an older version (a state decided on again after a newer one was made
  from it) copies that version's keys first, so the two histories part without touching
  each other.

A version is extended from one thread at a time, as a wallet's state is decided on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import msgspec


class KeyLog(msgspec.Struct, frozen=True, gc=False, eq=False):
    """The first ``size`` keys of a shared log, each with its instant (epoch seconds)."""

    instants: dict[str, int]
    """Key -> its instant, for every version sharing the log."""
    names: list[str]
    """The keys in the order they came: a version holds ``names[:size]``."""
    size: int

    @staticmethod
    def of(pairs: Iterable[tuple[str, int]]) -> KeyLog:
        """A new log of ``pairs`` (a key given twice keeps its last instant)."""
        instants = dict(pairs)
        return KeyLog(instants, list(instants), len(instants))

    def set(self, key: str, at: int) -> KeyLog:
        """This version with ``key`` at ``at``: appended in place when this is the newest
        version and the key is new; otherwise a copy (see the module's docstring)."""
        size, names = self.size, self.names
        if size and size == len(names) and key not in self.instants:
            self.instants[key] = at
            names.append(key)
            return KeyLog(self.instants, names, size + 1)
        if not size:  # never the shared empty log: it must stay empty for every holder
            return KeyLog({key: at}, [key], 1)
        latest = dict(self.items())
        latest[key] = at
        return KeyLog.of(latest.items())

    def __contains__(self, key: object) -> bool:
        if key not in self.instants:
            return False
        # In the shared log: this version holds it unless it came later (each key comes once).
        size, names = self.size, self.names
        return size == len(names) or key not in names[size:]

    def get(self, key: str, default: int | None = None) -> int | None:
        return self.instants[key] if key in self else default

    def __getitem__(self, key: str) -> int:
        if key not in self:
            raise KeyError(key)
        return self.instants[key]

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[str]:
        return islice(self.names, self.size)

    def keys(self) -> Iterator[str]:
        return islice(self.names, self.size)

    def values(self) -> Iterator[int]:
        return map(self.instants.__getitem__, islice(self.names, self.size))

    def items(self) -> Iterator[tuple[str, int]]:
        """The pairs in the order they came (a later append does not show)."""
        instants = self.instants
        return ((key, instants[key]) for key in islice(self.names, self.size))

    def __eq__(self, other: object) -> bool:
        """Equal to any mapping with the same keys and instants (a ``Map`` included)."""
        if isinstance(other, KeyLog):
            if other.names is self.names and other.size == self.size:
                return True
            return self.size == other.size and dict(self.items()) == dict(other.items())
        items = getattr(other, "items", None)
        if items is None:
            return NotImplemented
        return dict(self.items()) == dict(items())

    def __ne__(self, other: object) -> bool:
        # Needed: with eq=False, msgspec's Struct answers != on its own, ignoring __eq__.
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self) -> str:
        return f"KeyLog({dict(self.items())!r})"


NO_KEYS = KeyLog({}, [], 0)
"""The empty log every new state starts from (``set`` never appends to it)."""
