"""The assisted quick check (老幼助查): who is eligible, and the per-operator
rate limit of a worker."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from healthcode.core.enrollment.errors import RateLimitedError

ASSIST_MAX_AGE_CHILD = 16
ASSIST_MIN_AGE_ELDER = 60


class OperatorRateLimiter:
    """A token bucket per operator, in this process's memory.

    Used when Redis is not configured (one node) or unreachable: then each
    worker counts on its own, and with N workers an operator gets up to N times
    the rate. With Redis the service counts the same capacity per minute
    across every worker of every node (``EnrollmentService._take_assist``).
    """

    def __init__(
        self,
        capacity: int = 20,
        per_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.rate = capacity / per_seconds
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, operator: str) -> None:
        """Spend one token of ``operator`` or raise ``RateLimitedError``."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(operator, (float(self.capacity), now))
            tokens = min(float(self.capacity), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[operator] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimitedError(details={"retry_after_s": round(wait, 1)})
            self._buckets[operator] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:
                # Forget full buckets so the map stays bounded.
                full = [k for k, (t, _) in self._buckets.items() if t >= self.capacity - 1]
                for k in full[:5_000]:
                    del self._buckets[k]


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years on ``day`` (a 29 February birthday counts from 1 March)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def assist_eligible(age: int) -> bool:
    """Aged 16 or under, or 60 or over."""
    return not ASSIST_MAX_AGE_CHILD < age < ASSIST_MIN_AGE_ELDER
