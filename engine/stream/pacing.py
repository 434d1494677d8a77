"""A steady rate for ``rating-engine publish --rate``: a token bucket the publisher waits on
while it serves delivery reports."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """Offers a steady ``rate`` per second, with bursts of at most ``burst`` tokens.

    `delay` says how long to wait for the next token; the caller waits however it likes
    (the publisher serves delivery reports meanwhile) and then calls `take`.
    """

    MIN_WAIT = 0.002

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # 50 ms worth of tokens: smooth at the second scale, yet not one sleep per record,
        # and room for what accrues during a `MIN_WAIT`.
        self.capacity = burst if burst is not None else max(1.0, rate / 20)
        self.tokens = self.capacity
        self._clock = clock
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds to wait before the next token (0 when one is available now).

        Never less than `MIN_WAIT`: at high rates the next token is microseconds away, and
        a wait shorter than the clock's (and ``poll``'s millisecond) resolution would spin.
        The burst allowance lets the records that accrued meanwhile go out together.
        """
        self._refill()
        missing = 1 - self.tokens
        # After sleeping exactly the announced delay, float rounding can leave the bucket a
        # hair short of a token; that counts as full rather than costing another wait.
        if missing <= 1e-9:
            return 0.0
        return max(missing / self.rate, self.MIN_WAIT)

    def take(self) -> None:
        self._refill()
        self.tokens -= 1
