"""Random valid resident ID numbers (GB 11643-1999), for tests and benchmarks.

Every number is drawn from a ``random.Random`` the caller owns, so a seed
reproduces a whole benchmark set. Division codes come from the ``id_card``
plugin's GB/T 2260 table (county-level codes of the mainland provinces), and
each birth date falls in a year when its code was in force, which is what a
real number looks like and what python-stdnum's stricter rule also accepts.

>>> import random
>>> number = random_resident_id(random.Random(7))
>>> len(number)
18
"""

from __future__ import annotations

import datetime as dt
import functools
import random

from healthcode.core.checkdigits import gb11643_check_char
from healthcode.plugins.id_card import RESIDENCE_PERMIT_PREFIXES, divisions

__all__ = [
    "random_legacy_resident_id",
    "random_resident_id",
    "random_resident_ids",
]

FIRST_YEAR = 1900
"""Earliest birth year drawn."""
LAST_YEAR = 2020
"""Latest birth year drawn: fixed, so that generated sets do not change with the clock."""

# Taiwan (71) has a GB/T 2260 code but no mainland resident ID numbers in use.
_EXCLUDED_PREFIXES = RESIDENCE_PERMIT_PREFIXES | {"71"}


@functools.cache
def _codes(first_year: int, last_year: int) -> tuple[tuple[str, int, int], ...]:
    """(code, first ordinal, last ordinal) per name period of county-level codes,
    clipped to the years; a code renamed once appears twice, which is harmless."""
    usable = []
    for code, division in sorted(divisions().items()):
        if code[:2] in _EXCLUDED_PREFIXES or code[4:] == "00":
            continue
        for period_first, period_last in division.periods:
            start = max(first_year, period_first or first_year)
            end = min(last_year, period_last or last_year)
            if start <= end:
                first_ordinal = dt.date(start, 1, 1).toordinal()
                usable.append((code, first_ordinal, dt.date(end, 12, 31).toordinal()))
    return tuple(usable)


def _body(rng: random.Random, first_year: int, last_year: int, sex: str | None) -> str:
    code, first, last = rng.choice(_codes(first_year, last_year))
    birth = dt.date.fromordinal(rng.randint(first, last))
    sequence = rng.randrange(1000)
    if sex is not None and (sequence % 2 == 1) != (sex == "M"):
        sequence ^= 1  # flip the parity, stay in 0..999
    return f"{code}{birth:%Y%m%d}{sequence:03d}"


def random_resident_id(
    rng: random.Random,
    *,
    sex: str | None = None,
    first_year: int = FIRST_YEAR,
    last_year: int = LAST_YEAR,
) -> str:
    """A valid 18-character number; ``sex`` "M" or "F" fixes the sequence parity."""
    body = _body(rng, first_year, last_year, sex)
    return body + gb11643_check_char(body)


def random_legacy_resident_id(rng: random.Random, *, sex: str | None = None) -> str:
    """A valid old 15-digit number (birth in 1900-1999, no check character)."""
    body = _body(rng, FIRST_YEAR, min(LAST_YEAR, 1999), sex)
    return body[:6] + body[8:]


def random_resident_ids(rng: random.Random, count: int, *, legacy_share: float = 0.0) -> list[str]:
    """``count`` valid numbers; about ``legacy_share`` of them in the 15-digit form."""
    return [
        random_legacy_resident_id(rng)
        if legacy_share and rng.random() < legacy_share
        else random_resident_id(rng)
        for _ in range(count)
    ]
