"""Synthetic ICAO 9303 MRZs with correct check digits, for tests and benchmarks.

Every generator takes a ``random.Random`` so that a seed reproduces a run,
and a ``today`` so that two-digit years read back to the dates generated:
birth dates fall in the last 90 years, expiry dates within 15 years of
``today``, both inside the windows ``healthcode.core.mrz`` resolves exactly.

``format_mrz`` builds an MRZ from ``MRZFields`` (the synthetic-image generator
uses it to print a known MRZ); ``random_fields`` draws fields; ``random_mrz``
and ``random_td3_batch`` are the fast paths for property tests and the
100,000-MRZ benchmark. All names and numbers are random letters: no real
person's data.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from dataclasses import dataclass
from typing import Literal

from healthcode.core.checkdigits import icao_check_digit
from healthcode.core.mrz import LAYOUTS as MRZ_LAYOUTS

Layout = Literal["TD1", "TD2", "TD3", "MRV-A", "MRV-B"]
LAYOUTS: tuple[Layout, ...] = ("TD3", "TD2", "TD1", "MRV-A", "MRV-B")

_LETTERS = string.ascii_uppercase
_ALNUM = string.ascii_uppercase + string.digits


def _width(layout: Layout, name: str) -> int:
    field = MRZ_LAYOUTS[layout].field(name)
    return field.end - field.start


# Width of the name field and of the optional-data field(s) per layout.
_NAME_WIDTH: dict[Layout, int] = {layout: _width(layout, "name") for layout in LAYOUTS}
_OPTIONAL_WIDTH: dict[Layout, int] = {layout: _width(layout, "optional_data") for layout in LAYOUTS}
_OPTIONAL_2_WIDTH = _width("TD1", "optional_data_2")
_LONG_NUMBER_LAYOUTS = frozenset(layout for layout in LAYOUTS if MRZ_LAYOUTS[layout].long_numbers)

# A sample of codes, ICAO-specific ones included, so that ``D<<`` is exercised.
COUNTRY_SAMPLE: tuple[str, ...] = (
    "CHN", "HKG", "MAC", "TWN", "USA", "GBR", "FRA", "D", "JPN", "KOR", "RUS", "IND",
    "BRA", "AUS", "CAN", "ITA", "ESP", "NLD", "SWE", "CHE", "SGP", "MYS", "THA", "VNM",
    "GBN", "XXA", "XXB", "UNO", "EUE", "RKS", "UTO",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MRZFields:
    """What an MRZ says, in the parser's terms (fillers stripped, names with spaces)."""

    layout: Layout
    document_code: str
    issuing_state: str
    nationality: str
    surname: str
    given_names: str | None
    number: str
    birth_date: dt.date | None
    sex: Literal["M", "F", "X"] | None
    expiry_date: dt.date
    optional_data: str = ""
    optional_data_2: str = ""
    """TD1 only."""
    optional_check_filler: bool = False
    """TD3 only: write '<' as the personal-number check when the field is empty."""


def _pad(text: str, width: int) -> str:
    if len(text) > width:
        raise ValueError(f"{len(text)} characters do not fit a field of {width}")
    return text + "<" * (width - len(text))


def _yymmdd(value: dt.date | None) -> str:
    return "<<<<<<" if value is None else value.strftime("%y%m%d")


def _name_field(fields: MRZFields, width: int) -> str:
    name = fields.surname.replace(" ", "<")
    if fields.given_names:
        name += "<<" + fields.given_names.replace(" ", "<")
    # ICAO truncates names that do not fit; the parser reports it as a warning.
    return _pad(name[:width], width)


def _number_and_overflow(fields: MRZFields, optional_width: int) -> tuple[str, str]:
    """(number field + check, optional-data field) with the long-number convention."""
    number = fields.number
    if len(number) <= 9:
        return _pad(number, 9) + icao_check_digit(_pad(number, 9)), _pad(
            fields.optional_data, optional_width
        )
    if fields.layout not in _LONG_NUMBER_LAYOUTS:
        raise ValueError(f"{fields.layout} has no room for a number of {len(number)} characters")
    head = number[9:] + icao_check_digit(number)
    optional = head + ("<" + fields.optional_data if fields.optional_data else "")
    return number[:9] + "<", _pad(optional, optional_width)


def format_mrz(fields: MRZFields) -> str:
    """The MRZ text (lines joined by ``\\n``) for ``fields``, every check digit right.

    Each field is written where ``healthcode.core.mrz`` places it, then every
    check digit in the layout's order (the composite last, over the others).
    """
    layout = MRZ_LAYOUTS[fields.layout]
    number, optional = _number_and_overflow(fields, _OPTIONAL_WIDTH[fields.layout])
    texts = {
        "document_code": _pad(fields.document_code, 2),
        "issuing_state": _pad(fields.issuing_state, 3),
        "name": _name_field(fields, _NAME_WIDTH[fields.layout]),
        "document_number": number[:9],
        "nationality": _pad(fields.nationality, 3),
        "birth_date": _yymmdd(fields.birth_date),
        "sex": fields.sex or "<",
        "expiry_date": _yymmdd(fields.expiry_date),
        "optional_data": optional,
        "optional_data_2": _pad(fields.optional_data_2, _OPTIONAL_2_WIDTH),
    }
    lines = ["<" * layout.width] * layout.lines
    for field in layout.fields:
        _write(lines, field.line, field.start, texts[field.name])
    for check in layout.checks:
        data = check.data(lines)
        if check.name == "document_number":
            digit = number[9]  # '<' for a long number: its check is in the optional data
        elif check.may_be_filler and fields.optional_check_filler and not data.strip("<"):
            digit = "<"
        else:
            digit = icao_check_digit(data)
        _write(lines, *check.position, digit)
    return "\n".join(lines)


def _write(lines: list[str], line: int, start: int, text: str) -> None:
    lines[line] = lines[line][:start] + text + lines[line][start + len(text) :]


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choices(_LETTERS, k=rng.randint(low, high)))


def _code_letter(layout: Layout, rng: random.Random) -> str:
    if layout == "TD3":
        return "P"
    if layout in ("MRV-A", "MRV-B"):
        return "V"
    return rng.choice("ACI")


def random_fields(
    rng: random.Random,
    layout: Layout = "TD3",
    *,
    today: dt.date,
    long_number: bool = False,
    plain: bool = False,
) -> MRZFields:
    """Random, valid fields for ``layout``; ``long_number`` uses 10-12 characters.

    ``plain`` keeps to the variants every reader understands (sex M or F, at
    least one given name, a document still valid for up to 10 years), for
    comparisons with peer libraries that refuse ICAO's rarer variants (sex
    ``X``, a name with no secondary identifier).
    """
    # The draws happen in a fixed order, so that a seed gives the same fields.
    document_code = _random_document_code(rng, layout)
    number, optional = _random_number_and_optional(rng, layout, long_number=long_number)
    surname, given = _random_names(rng, layout, plain=plain)
    birth, expiry = _random_dates(rng, today, plain=plain)
    return MRZFields(
        layout=layout,
        document_code=document_code,
        issuing_state=rng.choice(COUNTRY_SAMPLE),
        nationality=rng.choice(COUNTRY_SAMPLE),
        surname=surname,
        given_names=given,
        number=number,
        birth_date=birth,
        sex=rng.choice(("M", "F")) if plain else rng.choice(("M", "F", "X", None)),
        expiry_date=expiry,
        optional_data=optional,
        optional_data_2=(
            "".join(rng.choices(_ALNUM, k=rng.randint(0, _OPTIONAL_2_WIDTH)))
            if layout == "TD1"
            else ""
        ),
        optional_check_filler=layout == "TD3" and not optional and rng.random() < 0.5,
    )


def _random_document_code(rng: random.Random, layout: Layout) -> str:
    first = _code_letter(layout, rng)
    second = rng.choice("<<<<" + _LETTERS)
    if first == "C" and second in "RTSD":
        second = "<"  # CR, CT, CS, CD are the Chinese permits' codes
    return first + second.rstrip("<")


def _random_number_and_optional(
    rng: random.Random, layout: Layout, *, long_number: bool
) -> tuple[str, str]:
    """A number (10-12 characters when ``long_number``) and optional data that fits beside it."""
    optional_width = _OPTIONAL_WIDTH[layout]
    if long_number and layout in _LONG_NUMBER_LAYOUTS:
        number = "".join(rng.choices(_ALNUM, k=rng.randint(10, min(12, 9 + optional_width - 1))))
        room = optional_width - (len(number) - 9) - 2  # head, check, filler
    else:
        number = "".join(rng.choices(_ALNUM, k=rng.randint(6, 9)))
        room = optional_width
    optional = (
        "".join(rng.choices(_ALNUM, k=rng.randint(0, max(room, 0)))) if rng.random() < 0.5 else ""
    )
    return number, optional


def _random_names(rng: random.Random, layout: Layout, *, plain: bool) -> tuple[str, str | None]:
    """A surname and given names (``None`` at times, unless ``plain``) that fit the field."""
    surname = " ".join(_word(rng, 2, 10) for _ in range(rng.choice((1, 1, 1, 2))))
    width = _NAME_WIDTH[layout]
    given: str | None = (
        " ".join(_word(rng, 2, 8) for _ in range(rng.randint(1 if plain else 0, 3))) or None
    )
    while given and len(surname) + 2 + len(given) >= width:
        given = " ".join(given.split()[:-1]) or None
    return surname, given


def _random_dates(rng: random.Random, today: dt.date, *, plain: bool) -> tuple[dt.date, dt.date]:
    """A birth date in the last 90 years and an expiry after it, near ``today``."""
    birth = today - dt.timedelta(days=rng.randint(0, 90 * 365))
    if plain:
        expiry = today + dt.timedelta(days=rng.randint(1, 10 * 365))
    else:
        expiry = today + dt.timedelta(days=rng.randint(-15 * 365, 15 * 365))
    if expiry <= birth:
        expiry = birth + dt.timedelta(days=rng.randint(1, 3650))
    return birth, expiry


def random_mrz(
    rng: random.Random, layout: Layout = "TD3", *, today: dt.date, long_number: bool = False
) -> tuple[str, MRZFields]:
    """A random valid MRZ of ``layout`` and the fields it encodes."""
    fields = random_fields(rng, layout, today=today, long_number=long_number)
    return format_mrz(fields), fields


def random_td3_batch(
    rng: random.Random, count: int, *, today: dt.date, plain: bool = False
) -> list[str]:
    """``count`` random valid TD3 MRZs (the benchmark's input); see ``random_fields``."""
    return [format_mrz(random_fields(rng, "TD3", today=today, plain=plain)) for _ in range(count)]
