"""Time rules: statuses and passes are valid until 24:00 Asia/Shanghai.

Everything is stored in UTC; only the daily cut-off is computed in Shanghai time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today_shanghai(now: dt.datetime | None = None) -> dt.date:
    """The current calendar date in Asia/Shanghai."""
    now = now or now_utc()
    return now.astimezone(SHANGHAI).date()


def next_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """The next 24:00 Asia/Shanghai after ``now``, as an aware UTC datetime.

    >>> next_cutoff(dt.datetime(2026, 11, 26, 15, 59, tzinfo=dt.UTC)).isoformat()
    '2026-11-26T16:00:00+00:00'
    """
    now = now or now_utc()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_day = now.astimezone(SHANGHAI).date()
    midnight = dt.datetime.combine(local_day + dt.timedelta(days=1), dt.time(0), SHANGHAI)
    return midnight.astimezone(dt.UTC)
