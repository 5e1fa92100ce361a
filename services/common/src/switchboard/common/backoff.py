"""How long to wait before retrying: one formula for every retry loop in Switchboard.

Exponential from ``base_s`` (doubling per failure), at most ``cap_s``; with ``jitter``
"equal jitter" (half the delay fixed, half random), so that many callers that failed together
(jobs of one dead dependency, replicas after a broker restart) spread out instead of coming
back at once, yet none retries at once.
"""

from __future__ import annotations

import math
import random


def delay(
    failures: int, base_s: float, cap_s: float = math.inf, *, jitter: bool = False, rng: random.Random | None = None
) -> float:
    """Seconds to wait after ``failures`` failures in a row (1: the first retry waits about ``base_s``)."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(0, failures - 1), 60))
    if not jitter:
        return ceiling
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
