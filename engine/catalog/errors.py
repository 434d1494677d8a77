"""What a catalog can be wrong about: one issue per mistake, all of them in one error."""

from __future__ import annotations

import msgspec


class CatalogIssue(msgspec.Struct, frozen=True):
    """One mistake in a catalog file: where it is and what is wrong.

    ``path`` is the place inside the document (``plans[0].versions[1].rates.data.EU``);
    ``line`` is 1-based, ``None`` when the mistake has no place in the text (an unreadable
    file).
    """

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class CatalogError(Exception):
    """A catalog that cannot be loaded; ``issues`` holds every mistake found, in file order."""

    def __init__(self, issues: list[CatalogIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))

    def __reduce__(self) -> tuple[type[CatalogError], tuple[list[CatalogIssue]]]:
        # Rebuild from the issues, not the text, when the error crosses a process boundary.
        return (CatalogError, (self.issues,))
