"""Many resident-ID numbers checked at once, for authority imports.

The verdict is the parse's (``parse_resident_id(number, explicit=True)``
with no problem of severity ``error``), computed on a whole batch with numpy
instead of number by number: the shape, the GB 11643 check character, the
birth date as a calendar date, the division code in GB/T 2260, and neither a
residence-permit (81/82/83) nor a Foreign Permanent Resident (9) prefix.
Only 18-character numbers are judged here; a 15-digit legacy number, like
any refused one, is left to the parse, which canonicalises it or says why.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from healthcode.core.checkdigits import GB11643_CHECK, GB11643_WEIGHTS
from healthcode.plugins.id_card import RESIDENCE_PERMIT_PREFIXES, divisions

WEIGHTS = np.array(GB11643_WEIGHTS, dtype=np.int64)
"""``GB11643_WEIGHTS`` for a matrix product."""
CHECK_CHARS = np.frombuffer(GB11643_CHECK.encode("ascii"), dtype=np.uint8)
"""``GB11643_CHECK`` as ASCII codes, indexed by the weighted sum modulo 11."""
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_PLACES = {n: 10 ** np.arange(n - 1, -1, -1, dtype=np.int64) for n in (2, 4, 6)}
_ZERO, _NINE, _X = ord("0"), ord("9"), ord("X")

Ints = npt.NDArray[np.int64]


@functools.cache
def _known_codes() -> Ints:
    return np.array(sorted(int(code) for code in divisions()), dtype=np.int64)


@functools.cache
def _permit_prefixes() -> Ints:
    return np.array([int(prefix) for prefix in RESIDENCE_PERMIT_PREFIXES], dtype=np.int64)


def valid_resident_ids(numbers: Sequence[str]) -> list[bool]:
    """For each normalised number: True when it is an 18-character resident ID
    that the parse accepts without an error; False when it is not, or is
    another shape (which the parse may still read, e.g. a 15-digit one)."""
    verdicts = [False] * len(numbers)
    at = [i for i, number in enumerate(numbers) if len(number) == 18]
    if not at:
        return verdicts
    chosen = numbers if len(at) == len(numbers) else [numbers[i] for i in at]
    # One byte per character whatever it is ("?" for anything not ASCII).
    raw = np.frombuffer("".join(chosen).encode("ascii", "replace"), dtype=np.uint8)
    raw = raw.reshape(len(chosen), 18)
    digits = raw.astype(np.int64) - _ZERO
    ok = ((raw[:, :17] >= _ZERO) & (raw[:, :17] <= _NINE)).all(axis=1)
    last = raw[:, 17]
    ok &= ((last >= _ZERO) & (last <= _NINE)) | (last == _X)
    digits[~ok] = 0  # keep the arithmetic below in range for refused rows
    ok &= CHECK_CHARS[(digits[:, :17] @ WEIGHTS) % 11] == last
    ok &= digits[:, 0] != 9
    prefix = digits[:, :2] @ _PLACES[2]
    ok &= ~np.isin(prefix, _permit_prefixes())
    ok &= np.isin(digits[:, :6] @ _PLACES[6], _known_codes())
    year = digits[:, 6:10] @ _PLACES[4]
    month = digits[:, 10:12] @ _PLACES[2]
    day = digits[:, 12:14] @ _PLACES[2]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    longest = _DAYS_IN_MONTH[np.clip(month, 1, 12) - 1] + (leap & (month == 2))
    ok &= (year >= 1) & month_ok & (day >= 1) & (day <= longest)
    for i, good in zip(at, ok.tolist(), strict=True):
        verdicts[i] = good
    return verdicts
