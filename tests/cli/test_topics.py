"""``rating-engine topics``: how a topic's retention is shown."""

from __future__ import annotations

import pytest

from engine.cli.topics import retention


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (None, "forever"),
        (7 * 86_400_000, "7 d"),
        (36 * 3_600_000, "36 h"),
        (90 * 60_000, "90 min"),
        (45_000, "45 s"),
        (1500, "1500 ms"),
    ],
)
def test_retention_in_the_largest_exact_unit(ms: int | None, shown: str) -> None:
    assert retention(ms) == shown
