"""Generators of valid, synthetic permit numbers and card MRZs (hkmo_permit kinds).

For tests, benchmarks and synthetic document images. Every function takes a
``random.Random`` so that runs are reproducible; nothing here is a real
person's document. The MRZ builders follow the layouts documented (confirmed or
assumed, position by position) in ``healthcode.plugins.hkmo_permit.machine_zone``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from attrs import frozen

from healthcode.core.checkdigits import gb11643_check_char, icao_check_digit
from healthcode.core.models import Sex
from healthcode.core.mrz import CARD, PERMIT_TD1, CheckDigit
from healthcode.plugins.hkmo_permit.kinds import (
    HK_MO_EXIT_ENTRY_PERMIT,
    HOME_RETURN_PERMIT,
    MRZ_CODE_BY_KIND,
    RESIDENCE_PERMIT,
    TW_COMPATRIOT_PERMIT,
    TW_EXIT_ENTRY_PERMIT,
)

# Letters used in the second position of C-series numbers since 2018 (I, O excluded).
_C_SERIES_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_SURNAMES = ("CHAN", "WONG", "LEE", "CHEUNG", "LAU", "LAM", "HO", "NG", "LIN", "OUYANG")
_GIVEN = ("TAI MAN", "SIU MING", "MEI LING", "WING", "KA YAN", "JIA HAO", "YI")
_RESIDENCE_DIVISIONS = ("810000", "820000", "830000")

BIRTH_RANGE = (dt.date(1940, 1, 1), dt.date(2015, 12, 31))
"""Birth dates generated; they resolve to the same century from any day in 2016-2039."""
EXPIRY_RANGE = (dt.date(2020, 1, 1), dt.date(2045, 12, 31))


@frozen
class PermitSample:
    """A generated document with the facts its MRZ encodes (for round trips)."""

    kind: str
    number: str
    mrz: str
    birth_date: dt.date
    expiry_date: dt.date
    sex: Sex | None = None
    surname: str | None = None
    given_names: str | None = None


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


# --- numbers ----------------------------------------------------------------------


def home_return_permit_number(
    rng: random.Random, *, non_chinese: bool | None = None, with_renewal: bool | None = None
) -> str:
    """``H``/``M`` + 8 digits (+ 2-digit renewal count), or ``HA``/``MA`` + 7 digits."""
    letter = rng.choice("HM")
    if non_chinese is None:
        non_chinese = rng.random() < 0.2
    if non_chinese:
        return letter + "A" + _digits(rng, 7)
    if with_renewal is None:
        with_renewal = rng.random() < 0.3
    return letter + _digits(rng, 8) + (f"{rng.randrange(100):02d}" if with_renewal else "")


def tw_compatriot_permit_number(rng: random.Random, *, legacy: bool | None = None) -> str:
    """8 digits; legacy booklets: 10 digits, sometimes + an office letter."""
    if legacy is None:
        legacy = rng.random() < 0.3
    if not legacy:
        return _digits(rng, 8)
    return _digits(rng, 10) + (rng.choice("ABD") if rng.random() < 0.5 else "")


def residence_permit_number(
    rng: random.Random, *, division: str | None = None, birth_date: dt.date | None = None
) -> str:
    """810000/820000/830000 + YYYYMMDD + sequence + MOD 11-2 check character."""
    division = division or rng.choice(_RESIDENCE_DIVISIONS)
    birth_date = birth_date or random_date(rng, *BIRTH_RANGE)
    body = f"{division}{birth_date:%Y%m%d}{rng.randrange(1000):03d}"
    return body + gb11643_check_char(body)


def exit_entry_permit_number(rng: random.Random) -> str:
    """``C`` + 8 digits (2014-2018) or ``C`` + letter (not I/O) + 7 digits."""
    second = rng.choice("0123456789" + _C_SERIES_LETTERS)
    return "C" + second + _digits(rng, 7)


def tw_exit_entry_permit_number(rng: random.Random) -> str:
    """``L`` + 8 digits."""
    return "L" + _digits(rng, 8)


def random_number(rng: random.Random, kind: str) -> str:
    """A valid typed number of ``kind``."""
    makers: dict[str, Callable[[random.Random], str]] = {
        HOME_RETURN_PERMIT: home_return_permit_number,
        TW_COMPATRIOT_PERMIT: tw_compatriot_permit_number,
        RESIDENCE_PERMIT: residence_permit_number,
        HK_MO_EXIT_ENTRY_PERMIT: exit_entry_permit_number,
        TW_EXIT_ENTRY_PERMIT: tw_exit_entry_permit_number,
    }
    return makers[kind](rng)


# --- MRZs -------------------------------------------------------------------------


def card_line_mrz(code: str, number: str, birth_date: dt.date, expiry_date: dt.date) -> str:
    """The 1x30 card line of CS/CD permits (layout confirmed; see machine_zone)."""
    number_field = number.ljust(9, "<")
    if len(number_field) != 9:
        raise ValueError("the card line holds numbers of at most 9 characters")
    expiry, birth = f"{expiry_date:%y%m%d}", f"{birth_date:%y%m%d}"
    part_number = number_field + icao_check_digit(number_field)
    part_expiry = expiry + icao_check_digit(expiry)
    part_birth = birth + icao_check_digit(birth)
    return _with_composite(f"{code}{part_number}<{part_expiry}<{part_birth}<<", CARD.composite)


def _with_composite(mrz: str, composite: CheckDigit | None) -> str:
    """``mrz`` with its composite check digit written where the layout puts it."""
    assert composite is not None
    lines = mrz.split("\n")
    line, column = composite.position
    digit = icao_check_digit(composite.data(lines))
    lines[line] = lines[line][:column] + digit + lines[line][column + 1 :]
    return "\n".join(lines)


def _name_field(text: str) -> str:
    return "<".join(text.split())


def td1_permit_mrz(
    code: str,
    number: str,
    birth_date: dt.date,
    sex: str,
    expiry_date: dt.date,
    surname: str,
    given_names: str,
    *,
    nationality: str = "CHN",
    optional_data: str = "",
) -> str:
    """The 3x30 CR/CT zone in the assumed ICAO TD1 layout (see machine_zone).

    Numbers longer than 9 characters use the TD1 overflow rule: ``<`` in the
    check position, the rest of the number and its check digit in the optional
    data. ``optional_data`` fills line 2 columns 19-29 (opaque to the reader)."""
    if len(number) <= 9:
        field = number.ljust(9, "<")
        head = field + icao_check_digit(field)
        optional1 = ""
    else:
        head = number[:9] + "<"
        optional1 = number[9:] + icao_check_digit(number)
    line1 = (f"{code}CHN" + head + optional1).ljust(30, "<")
    birth, expiry = f"{birth_date:%y%m%d}", f"{expiry_date:%y%m%d}"
    upper = (
        birth + icao_check_digit(birth) + sex + expiry + icao_check_digit(expiry)
    ) + nationality.ljust(3, "<")
    optional2 = optional_data.ljust(11, "<")[:11]
    line2 = upper + optional2 + "<"
    name = _name_field(surname) + "<<" + _name_field(given_names)
    line3 = name[:30].ljust(30, "<")
    return _with_composite("\n".join((line1, line2, line3)), PERMIT_TD1.composite)


def random_mrz_sample(rng: random.Random, kind: str) -> PermitSample:
    """A generated permit with an MRZ; ``kind`` must be one with an MRZ."""
    code = MRZ_CODE_BY_KIND[kind]
    birth = random_date(rng, *BIRTH_RANGE)
    expiry = random_date(rng, *EXPIRY_RANGE)
    if kind in (HK_MO_EXIT_ENTRY_PERMIT, TW_EXIT_ENTRY_PERMIT):
        number = random_number(rng, kind)
        return PermitSample(kind, number, card_line_mrz(code, number, birth, expiry), birth, expiry)
    number = random_number(rng, kind)
    sex: Sex = rng.choice(("M", "F"))
    surname, given = rng.choice(_SURNAMES), rng.choice(_GIVEN)
    mrz = td1_permit_mrz(code, number, birth, sex, expiry, surname, given)
    return PermitSample(kind, number, mrz, birth, expiry, sex, surname, given)
