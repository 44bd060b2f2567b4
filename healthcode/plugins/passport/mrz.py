"""ICAO 9303 machine-readable zones, read from text.

Layouts (ICAO 9303 parts 4 to 7; field positions in ``healthcode.core.mrz``)::

    TD3    2 x 44  passports (document code P)
    TD2    2 x 36  official travel documents (A, C, I)
    TD1    3 x 30  identity and travel cards (A, C, I)
    MRV-A  2 x 44  visas (V)
    MRV-B  2 x 36  visas (V)

``parse_mrz`` is a pure function of the MRZ text (and of the day used to read
two-digit years), so that OCR can call it on every candidate reading of an
image. It never repairs a character: a character that looks misread is at
most reported as a ``suggested_repair`` warning.

Document numbers longer than 9 characters (ICAO 9303 part 5 section 4.2.4,
note j, for TD1; part 6 for TD2): the first 9 characters fill the number
field, ``<`` stands in the check-digit position, and the rest of the number
followed by the check digit of the *whole* number opens the optional-data
field, ended by a filler. The same reading is applied to TD3 (part 4 does not
spell it out, but issuers and readers use it); it only applies when the check
position holds ``<`` and the number field is full, which a regular MRZ never
has. MRV layouts have no such convention.

Problem details locate findings with 1-based ``line`` and ``column`` (ICAO's
own numbering); ``check_digit_mismatch`` keeps core's 0-based ``position`` of
the field in its line and adds ``line``, ``check_line`` and ``check_column``.
Details never hold a document number, a name or optional data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, NamedTuple, cast

import attrs

from healthcode.core.clock import today_shanghai
from healthcode.core.errors import MalformedMRZError, MalformedNumberError
from healthcode.core.models import Document, Problem, Sex
from healthcode.core.mrz import (
    ICAO_LAYOUTS,
    PERMIT_LAYOUTS,
    MRZField,
    MRZLayout,
    check_digit_problem,
    layout_for,
    resolve_birth_date,
    resolve_expiry_date,
)
from healthcode.plugins.passport.countries import ICAO_CODES, SPECIMEN_CODE

Layout = Literal["TD1", "TD2", "TD3", "MRV-A", "MRV-B"]

KIND_PASSPORT: Final = "passport"
KIND_TRAVEL_ID: Final = "travel_id"
KIND_VISA: Final = "visa"
KINDS: Final = frozenset({KIND_PASSPORT, KIND_TRAVEL_ID, KIND_VISA})

PERMIT_CODES: Final = frozenset(PERMIT_LAYOUTS)
"""Document codes of the Chinese permits (Home Return Permit, Taiwan compatriot
permit, exit-entry permits): the hkmo_permit plugin reads those."""

SHAPES: Final[Mapping[str, tuple[int, int]]] = {
    layout.name: layout.shape for layout in ICAO_LAYOUTS
}
"""Layout -> (lines, characters per line)."""

EXPECTED_SHAPES: Final = tuple(dict.fromkeys(layout.shape for layout in ICAO_LAYOUTS))
"""The distinct shapes: 2 x 44, 2 x 36, 3 x 30."""

# A one-line paste of a whole MRZ (a form that drops line breaks) has one of
# these lengths (88, 72, 90); cutting it back into lines changes no character.
_SINGLE_LINE_WIDTHS: Final = {layout.lines * layout.width: layout.width for layout in ICAO_LAYOUTS}

_MRZ_TEXT = re.compile(r"[0-9A-Z<\n]*")
_NAME_FIELD = re.compile(r"[A-Z<]+")
# ICAO 9303 part 3 section 4.6: name components are separated by one filler,
# the primary and secondary identifiers by two; fillers after the name are
# padding. Anything else (letters after a run of padding, a third '<<' group)
# is a damaged field, not a name.
_NAME_STRUCTURE = re.compile(r"(?:[A-Z]+(?:<[A-Z]+)*)?(?:<<[A-Z]+(?:<[A-Z]+)*)?")
_CODE_FIELD = re.compile(r"[A-Z][A-Z<]")
_COUNTRY_FIELD = re.compile(r"[A-Z][A-Z<]{2}")
# A birth date may have unknown parts written as '<<' (ICAO 9303 part 3, 4.8).
_PARTIAL_DATE = re.compile(r"(?:[0-9]{2}|<<){3}")

# --- check digits -----------------------------------------------------------------


def _weighted_table(weight: int) -> bytes:
    table = bytearray(256)
    for value, char in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        table[ord(char)] = value * weight % 10
    # '<' counts 0, like every byte left at 0 (the text is validated first).
    return bytes(table)


_W7: Final = _weighted_table(7)
_W3: Final = _weighted_table(3)
_W1: Final = _weighted_table(1)


def check_digit(data: str) -> str:
    """ICAO 7-3-1 check digit, about 4x faster than the generic version in core.

    ``data`` must hold MRZ characters only. Each slice of the byte string is
    translated to (value * weight) mod 10 in C and summed.

    >>> check_digit("L898902C3")
    '6'
    """
    raw = data.encode("ascii")
    total = (
        sum(raw[0::3].translate(_W7))
        + sum(raw[1::3].translate(_W3))
        + sum(raw[2::3].translate(_W1))
    )
    return "0123456789"[total % 10]


# --- layout -----------------------------------------------------------------------


def split_lines(mrz: str) -> tuple[list[str], bool]:
    """The MRZ's lines, and whether a one-line paste was cut into lines."""
    lines = mrz.split("\n")
    if len(lines) == 1:
        width = _SINGLE_LINE_WIDTHS.get(len(mrz))
        if width is not None:
            return [mrz[i : i + width] for i in range(0, len(mrz), width)], True
    return lines, False


def layout_of(lines: list[str]) -> Layout | None:
    """The ICAO layout these lines have, from their shape and the first letter."""
    layout = _icao_layout(lines)
    return None if layout is None else cast(Layout, layout.name)


def _icao_layout(lines: list[str]) -> MRZLayout | None:
    layout = layout_for(lines)
    return layout if layout in ICAO_LAYOUTS else None


def looks_like_icao_mrz(mrz: str) -> bool:
    """Whether an MRZ of unnamed kind is this plugin's to read (or to reject).

    True for two or three lines (or a one-line paste of a whole MRZ) whose
    document code starts with P, I, A, C or V, except the Chinese permits'
    codes CR, CT, CS and CD, which belong to the hkmo_permit plugin.
    """
    if mrz[:2] in PERMIT_CODES or mrz[:1] not in ("P", "I", "A", "C", "V"):
        return False
    lines = mrz.count("\n") + 1
    return lines in (2, 3) or (lines == 1 and len(mrz) in _SINGLE_LINE_WIDTHS)


def kind_for_code(document_code: str) -> str:
    """Document kind for an MRZ document code: P passport, V visa, others travel_id."""
    first = document_code[:1]
    if first == "P":
        return KIND_PASSPORT
    if first == "V":
        return KIND_VISA
    return KIND_TRAVEL_ID


def _malformed(lines: list[str]) -> MalformedMRZError:
    lengths = [len(line) for line in lines]
    shape = " + ".join(str(n) for n in lengths)
    return MalformedMRZError(
        "A machine-readable zone has 2 lines of 44 characters (passport, visa), 2 lines "
        f"of 36 or 3 lines of 30 (cards); this one has {len(lines)} line(s) of {shape} "
        "characters. Check for missing or extra characters, including '<'.",
        "机读区应为 2 行各 44 个字符（护照、签证）、2 行各 36 个字符"
        f"或 3 行各 30 个字符（卡式证件）；输入的内容为 {len(lines)} 行，"
        f"各行字符数为 {shape}。请检查是否漏输或多输了字符（包括“<”）。",
        details={
            "lines": len(lines),
            "lengths": lengths,
            "expected": [list(shape_) for shape_ in EXPECTED_SHAPES],
        },
    )


# --- fields -----------------------------------------------------------------------


class _Where(NamedTuple):
    """Where a field starts: line index and column, both 0-based."""

    line: int
    start: int


_FIELD_MAPS: dict[int, tuple[MRZLayout, dict[str, MRZField]]] = {}


def _field(layout: MRZLayout, name: str) -> MRZField:
    """``layout.field(name)`` from a dict built once per layout (the layout's
    own lookup walks its fields; a TD3 reading asks about 13 times)."""
    entry = _FIELD_MAPS.get(id(layout))
    if entry is None or entry[0] is not layout:
        entry = _FIELD_MAPS[id(layout)] = (layout, {f.name: f for f in layout.fields})
    found = entry[1].get(name)
    return layout.field(name) if found is None else found


def _where(field: MRZField) -> _Where:
    return _Where(field.line, field.start)


def _check_at(field: MRZField) -> _Where:
    assert field.check is not None, f"{field.name} has no check digit"
    return _Where(field.line, field.check)


@attrs.define
class _Reading:
    """One MRZ being read: its layout, its lines and what was found so far."""

    layout: MRZLayout
    lines: list[str]
    problems: list[Problem] = attrs.Factory(list)

    def text(self, name: str) -> str:
        return _field(self.layout, name).read(self.lines)

    def where(self, name: str) -> _Where:
        return _where(_field(self.layout, name))


# --- problems ---------------------------------------------------------------------

_FIELD_EN: Final = {
    "document_code": "document code",
    "issuing_state": "issuing state",
    "nationality": "nationality",
    "name": "name",
    "document_number": "document number",
    "birth_date": "date of birth",
    "expiry_date": "date of expiry",
    "optional_data": "optional data",
    "sex": "sex",
}
_FIELD_ZH: Final = {
    "document_code": "证件类型代码",
    "issuing_state": "签发国",
    "nationality": "国籍",
    "name": "姓名",
    "document_number": "证件号码",
    "birth_date": "出生日期",
    "expiry_date": "有效期至",
    "optional_data": "可选数据",
    "sex": "性别",
}


def _at(where: _Where, offset: int = 0) -> dict[str, int]:
    # People and ICAO count lines and character positions from 1.
    return {"line": where.line + 1, "column": where.start + offset + 1}


def _invalid_characters(field: str, text: str, allowed: str, where: _Where) -> Problem:
    return Problem(
        code="invalid_characters_in_field",
        field=field,
        message_en=f"The {_FIELD_EN[field]} holds characters it cannot hold (allowed: {allowed}).",
        message_zh=f"{_FIELD_ZH[field]}包含不允许的字符（允许：{allowed}）。",
        details={**_at(where), "length": len(text)},
    )


def _check_problem(
    field: str,
    data: str,
    check: str,
    where: _Where | None,
    check_at: _Where,
    *,
    may_be_filler: bool,
) -> Problem:
    problem = check_digit_problem(
        field,
        data,
        check,
        may_be_filler=may_be_filler,
        start=None if where is None else where.start,
    )
    assert problem is not None, "only called on a mismatch"
    details = {
        **problem.details,
        "check_line": check_at.line + 1,
        "check_column": check_at.start + 1,
    }
    if where is not None:
        details["line"] = where.line + 1
    return attrs.evolve(problem, details=details)


# OCR and typing confusions worth suggesting; digits only where a digit belongs.
_TO_DIGIT: Final = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "Z": "2",
                    "S": "5", "G": "6", "T": "7", "B": "8", "A": "4"}  # fmt: skip
_TO_LETTER: Final = {"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"}


def _suggest_repair(
    field: str, data: str, check: str, where: _Where, check_at: _Where, *, digits_only: bool
) -> Problem | None:
    """A warning naming the one confusable character whose change fixes a check.

    Only when exactly one single change works: the suggestion is a hint for a
    person to look at the document again, never applied.
    """
    found: list[tuple[_Where, int, str, str]] = []
    for i, char in enumerate(data):
        alt = _TO_DIGIT.get(char) or (None if digits_only else _TO_LETTER.get(char))
        if alt is not None and check_digit(data[:i] + alt + data[i + 1 :]) == check:
            found.append((where, i, char, alt))
    alt = _TO_DIGIT.get(check)
    if alt is not None and check_digit(data) == alt:
        found.append((check_at, 0, check, alt))
    if len(found) != 1:
        return None
    at, offset, char, alt = found[0]
    return Problem(
        code="suggested_repair",
        severity="warning",
        field=field,
        message_en=(
            f"The {_FIELD_EN[field]} check would pass if '{char}' at line {at.line + 1}, "
            f"position {at.start + offset + 1} were '{alt}'. Compare it with the document; "
            "nothing was changed."
        ),
        message_zh=(
            f"若第 {at.line + 1} 行第 {at.start + offset + 1} 位的“{char}”为“{alt}”，"
            f"{_FIELD_ZH[field]}校验即可通过。请与证件核对；系统未作任何修改。"
        ),
        details={**_at(at, offset), "found": char, "suggested": alt},
    )


def _check(
    problems: list[Problem],
    field: str,
    data: str,
    check: str,
    where: _Where | None,
    check_at: _Where,
    *,
    may_be_filler: bool = False,
    digits_only: bool = False,
    suggest: bool = True,
) -> None:
    if check == check_digit(data) or (may_be_filler and check == "<" and data.strip("<") == ""):
        return
    problems.append(
        _check_problem(field, data, check, where, check_at, may_be_filler=may_be_filler)
    )
    if suggest and where is not None:
        repair = _suggest_repair(field, data, check, where, check_at, digits_only=digits_only)
        if repair is not None:
            problems.append(repair)


def _country(problems: list[Problem], field: str, text: str, where: _Where) -> str | None:
    if _COUNTRY_FIELD.fullmatch(text) is None:
        problems.append(_invalid_characters(field, text, "A-Z, '<'", where))
        return None
    code = text.rstrip("<")
    if code not in ICAO_CODES:
        problems.append(
            Problem(
                code="unknown_country_code",
                field=field,
                message_en=(
                    f"'{code}' is not an ISO 3166-1 or ICAO 9303 code for the {_FIELD_EN[field]}."
                ),
                message_zh=f"“{code}”不是有效的{_FIELD_ZH[field]}代码（ISO 3166-1 或 ICAO 9303）。",
                details={**_at(where), "code": code},
            )
        )
    return code


def _date(
    problems: list[Problem],
    field: str,
    text: str,
    where: _Where,
    today: dt.date,
    resolve: Callable[[str, dt.date], dt.date | None],
) -> dt.date | None:
    if text.isdigit():
        value = resolve(text, today)
        if value is None:
            problems.append(
                Problem(
                    code=f"invalid_{field}",
                    field=field,
                    message_en=f"The {_FIELD_EN[field]} is not a real calendar date.",
                    message_zh=f"{_FIELD_ZH[field]}不是有效的日期。",
                    details=_at(where),
                )
            )
        return value
    if field == "birth_date" and _PARTIAL_DATE.fullmatch(text) is not None:
        # ICAO writes unknown parts of a birth date as '<<'; the check digit
        # still covers them.
        problems.append(
            Problem(
                code="birth_date_unknown",
                severity="warning",
                field=field,
                message_en="The date of birth is wholly or partly unknown ('<<' in the MRZ).",
                message_zh="出生日期全部或部分未知（机读区中为“<<”）。",
                details={**_at(where), "known_digits": sum(c.isdigit() for c in text)},
            )
        )
        return None
    problems.append(_invalid_characters(field, text, "0-9", where))
    return None


def _split_name(field: str) -> tuple[str, str | None]:
    """Primary and secondary identifiers; '<' inside a name stands for a space."""
    primary, _, secondary = field.partition("<<")
    surname = " ".join(primary.replace("<", " ").split())
    given = " ".join(secondary.replace("<", " ").split())
    return surname, given or None


# --- parsing ----------------------------------------------------------------------


def parse_mrz(
    mrz: str, *, today: dt.date | None = None, claimed_kind: str | None = None
) -> Document:
    """Read an ICAO 9303 MRZ (TD1, TD2, TD3, MRV-A, MRV-B) into a ``Document``.

    ``mrz``: upper-case lines of ``0-9 A-Z <`` joined by ``\\n`` (what
    ``healthcode.core.text.normalise_mrz`` returns); a one-line paste of a
    whole MRZ is cut into lines. ``today`` anchors two-digit years (default:
    today in Asia/Shanghai). ``claimed_kind``: the kind the person named, if
    any; a different kind read from the MRZ is reported as a warning.

    Raises ``MalformedMRZError`` when the text does not have an ICAO shape.
    Every rule a readable MRZ breaks becomes a ``Problem`` of the document.

    >>> doc = parse_mrz(
    ...     "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\\n"
    ...     "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ...     today=dt.date(2010, 1, 1),
    ... )
    >>> doc.kind, doc.number, doc.surname, doc.given_names, doc.expiry_date
    ('passport', 'L898902C3', 'ERIKSSON', 'ANNA MARIA', datetime.date(2012, 4, 15))
    """
    if _MRZ_TEXT.fullmatch(mrz) is None:
        raise _invalid_text(mrz)
    lines, was_split = split_lines(mrz)
    layout = _icao_layout(lines)
    if layout is None:
        raise _malformed(lines)
    return _read(_Reading(layout, lines), today or today_shanghai(), claimed_kind, was_split)


def _invalid_text(mrz: str) -> MalformedMRZError:
    lines = mrz.split("\n")
    return MalformedMRZError(
        "A machine-readable zone holds only the characters 0-9, A-Z and '<'.",
        "机读区只能包含 0-9、A-Z 和“<”。",
        details={
            "lines": len(lines),
            "lengths": [len(line) for line in lines],
            "expected": [list(shape) for shape in EXPECTED_SHAPES],
        },
    )


def _read(reading: _Reading, today: dt.date, claimed_kind: str | None, was_split: bool) -> Document:
    """Every field of the layout, in the order its findings are reported."""
    problems = reading.problems
    document_code, kind = _read_code(reading)
    issuing_state = _country(
        problems, "issuing_state", reading.text("issuing_state"), reading.where("issuing_state")
    )
    nationality = _country(
        problems, "nationality", reading.text("nationality"), reading.where("nationality")
    )
    number, optional, long_number = _read_number(reading)
    birth_date, expiry_date = _read_dates(reading, today)
    sex = _read_sex(reading)
    _read_other_checks(reading)
    surname, given_names = _read_name(reading)
    problems.extend(_notices(reading, issuing_state, kind, claimed_kind, was_split))
    extra: dict[str, Any] = {
        "layout": reading.layout.name,
        "optional_data": optional.rstrip("<"),
        "long_number": long_number,
        "personal_data": PERSONAL_EXTRA_KEYS,
    }
    if reading.layout.has("optional_data_2"):
        extra["optional_data_2"] = reading.text("optional_data_2").rstrip("<")
    return Document(
        kind=kind,
        number=number,
        source="mrz",
        document_code=document_code,
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        nationality=nationality,
        birth_date=birth_date,
        sex=sex,
        expiry_date=expiry_date,
        extra=extra,
        problems=tuple(problems),
        raw="\n".join(reading.lines),
    )


def _read_code(reading: _Reading) -> tuple[str, str]:
    """The document code (without filler) and the kind it names."""
    layout = reading.layout
    code = reading.text("document_code")
    if _CODE_FIELD.fullmatch(code) is None:
        reading.problems.append(
            _invalid_characters("document_code", code, "A-Z, '<'", reading.where("document_code"))
        )
    elif not code.startswith(layout.document_codes):
        reading.problems.append(
            Problem(
                code="unexpected_document_code",
                field="document_code",
                message_en=(
                    f"ICAO 9303 expects a {layout.name} document code to start with "
                    f"{' or '.join(layout.document_codes)}, not {code[0]}."
                ),
                message_zh=(
                    f"按 ICAO 9303，{layout.name} 证件类型代码应以 "
                    f"{'、'.join(layout.document_codes)} 开头，而非 {code[0]}。"
                ),
                details={"layout": layout.name, "first_letter": code[0]},
            )
        )
    return code.rstrip("<"), kind_for_code(code)


def _long_number_tail(reading: _Reading, data: str, check: str, optional: str) -> str | None:
    """The rest of a number over 9 characters and its check digit, or ``None``."""
    if check != "<" or data[-1] == "<" or not reading.layout.long_numbers:
        return None
    head = optional.split("<", 1)[0]
    return head if len(head) >= 2 else None


def _read_number(reading: _Reading) -> tuple[str, str, bool]:
    """The document number, the optional data after it, and whether it was long."""
    field = _field(reading.layout, "document_number")
    optional_field = _field(reading.layout, "optional_data")
    data, check = field.read(reading.lines), field.read_check(reading.lines)
    optional = optional_field.read(reading.lines)
    tail = _long_number_tail(reading, data, check, optional)
    if tail is None:
        _check(reading.problems, "document_number", data, check, _where(field), _check_at(field))
    else:
        data, check, optional = data + tail[:-1], tail[-1], optional[len(tail) + 1 :]
        check_at = _Where(optional_field.line, optional_field.start + len(data) - 9)
        _check(reading.problems, "document_number", data, check, _where(field), check_at,
               suggest=False)  # fmt: skip
    number = data.rstrip("<")
    if not number:
        reading.problems.append(
            Problem(
                code="missing_document_number",
                field="document_number",
                message_en="The document number is empty.",
                message_zh="证件号码为空。",
                details=_at(_where(field)),
            )
        )
    return number, optional, tail is not None


def _read_date(
    reading: _Reading,
    name: str,
    today: dt.date,
    resolve: Callable[[str, dt.date], dt.date | None],
) -> dt.date | None:
    field = _field(reading.layout, name)
    text = field.read(reading.lines)
    _check(reading.problems, name, text, field.read_check(reading.lines), _where(field),
           _check_at(field), digits_only=True)  # fmt: skip
    return _date(reading.problems, name, text, _where(field), today, resolve)


def _read_dates(reading: _Reading, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    birth_date = _read_date(reading, "birth_date", today, resolve_birth_date)
    expiry_date = _read_date(reading, "expiry_date", today, resolve_expiry_date)
    if birth_date is not None and expiry_date is not None and expiry_date <= birth_date:
        reading.problems.append(
            Problem(
                code="expiry_before_birth",
                field="expiry_date",
                message_en="The date of expiry is not after the date of birth.",
                message_zh="有效期早于出生日期。",
            )
        )
    return birth_date, expiry_date


def _read_sex(reading: _Reading) -> Sex | None:
    """'<' means unspecified and is read as None ("not stated"), leaving "X"
    for documents that state X."""
    sex_char = reading.text("sex")
    sex = _SEXES.get(sex_char)
    if sex is None and sex_char != "<":
        reading.problems.append(
            Problem(
                code="invalid_sex",
                field="sex",
                message_en="The sex must be M, F, X or '<' (unspecified).",
                message_zh="性别只能是 M、F、X 或“<”（未说明）。",
                details=_at(reading.where("sex")),
            )
        )
    return sex


def _read_other_checks(reading: _Reading) -> None:
    """TD3's personal number has its own check ('<' allowed when the field is
    empty); elsewhere only the composite covers the optional data."""
    optional = _field(reading.layout, "optional_data")
    if optional.check is not None:
        _check(reading.problems, "optional_data", optional.read(reading.lines),
               optional.read_check(reading.lines), _where(optional), _check_at(optional),
               may_be_filler=optional.may_be_filler)  # fmt: skip
    composite = reading.layout.composite
    if composite is not None:
        _check(reading.problems, "composite", composite.data(reading.lines),
               composite.found(reading.lines), None, _Where(*composite.position),
               suggest=False)  # fmt: skip


def _read_name(reading: _Reading) -> tuple[str | None, str | None]:
    """Surname and given names, when the name field can be read."""
    name_field = reading.text("name")
    where = reading.where("name")
    if _NAME_FIELD.fullmatch(name_field) is None:
        reading.problems.append(_invalid_characters("name", name_field, "A-Z, '<'", where))
        return None, None
    if _NAME_STRUCTURE.fullmatch(name_field.rstrip("<")) is None:
        reading.problems.append(
            Problem(
                code="invalid_name_field",
                field="name",
                message_en=(
                    "The name field is damaged: name parts must be separated by one '<', "
                    "surname and given names by '<<', with filler only at the end."
                ),
                message_zh="姓名字段格式错误：名字各部分以一个“<”分隔，姓与名以“<<”分隔，填充符只能在末尾。",
                details=_at(where),
            )
        )
        return None, None
    surname, given_names = _split_name(name_field)
    if not surname:
        reading.problems.append(
            Problem(
                code="missing_primary_identifier",
                field="name",
                message_en="The name has no primary identifier (surname).",
                message_zh="姓名缺少主标识（姓）。",
                details=_at(where),
            )
        )
    if name_field[-1] != "<":
        reading.problems.append(
            Problem(
                code="name_truncated",
                severity="warning",
                field="name",
                message_en="The name fills its whole field and may be truncated.",
                message_zh="姓名占满了整个字段，可能被截断。",
                details={"layout": reading.layout.name},
            )
        )
    return surname or None, given_names


def _notices(
    reading: _Reading,
    issuing_state: str | None,
    kind: str,
    claimed_kind: str | None,
    was_split: bool,
) -> list[Problem]:
    """Warnings about the document as a whole: specimen, one-line paste, kind."""
    notices = []
    if issuing_state == SPECIMEN_CODE:
        notices.append(
            Problem(
                code="specimen_document",
                severity="warning",
                field="issuing_state",
                message_en="This is an ICAO specimen (Utopia), not a real document.",
                message_zh="这是 ICAO 样例证件（乌托邦），并非真实证件。",
            )
        )
    if was_split:
        count = len(reading.lines)
        notices.append(
            Problem(
                code="mrz_lines_split",
                severity="warning",
                field="mrz",
                message_en=f"The MRZ was entered on one line; it was read as {count} lines.",
                message_zh=f"机读区被输入为一行，已按 {count} 行读取。",
            )
        )
    if claimed_kind is not None and claimed_kind != kind:
        notices.append(
            Problem(
                code="document_kind_mismatch",
                severity="warning",
                field="kind",
                message_en=f"The MRZ is of a {kind.replace('_', ' ')}, not a "
                f"{claimed_kind.replace('_', ' ')}.",
                message_zh=f"该机读区属于{_KIND_ZH.get(kind, kind)}，"
                f"而非{_KIND_ZH.get(claimed_kind, claimed_kind)}。",
                details={"claimed": claimed_kind, "read": kind},
            )
        )
    return notices


PERSONAL_EXTRA_KEYS: Final = ("optional_data", "optional_data_2")
"""Keys of ``Document.extra`` that hold personal data (personal numbers) and
must never be logged or displayed."""

_SEXES: Final[Mapping[str, Sex]] = {"M": "M", "F": "F", "X": "X"}
_KIND_ZH: Final = {KIND_PASSPORT: "护照", KIND_TRAVEL_ID: "旅行身份证件", KIND_VISA: "签证"}

PASSPORT_NUMBER_MAX: Final = 9


def parse_passport_number(number: str, issuing_state: str | None = None) -> Document:
    """A typed passport number (no MRZ), with the issuing state if given.

    ``number`` is normalised (``A-Z0-9``). A passport number fills the 9
    positions of the TD3 number field, so 1 to 9 characters are accepted, at
    least one of them a digit. Nothing can be checked beyond that: the
    document carries a ``not_check_verified`` warning.
    """
    if not 1 <= len(number) <= PASSPORT_NUMBER_MAX or not any(c.isdigit() for c in number):
        raise MalformedNumberError(
            "A passport number has 1 to 9 letters and digits, at least one of them a digit.",
            "护照号码由 1 至 9 位字母和数字组成，且至少包含一位数字。",
            details={"length": len(number), "min_length": 1, "max_length": PASSPORT_NUMBER_MAX},
        )
    problems = [
        Problem(
            code="not_check_verified",
            severity="warning",
            field="document_number",
            message_en="A typed passport number has no check digit; it could not be verified. "
            "Enter the MRZ to check it.",
            message_zh="手动输入的护照号码没有校验位，无法核验。请输入机读区以便校验。",
        )
    ]
    state = None
    if issuing_state:
        state = issuing_state.rstrip("<")
        if state not in ICAO_CODES:
            problems.append(
                Problem(
                    code="unknown_country_code",
                    field="issuing_state",
                    message_en=f"'{state[:3]}' is not an ISO 3166-1 or ICAO 9303 code for the "
                    "issuing state.",
                    message_zh=f"“{state[:3]}”不是有效的签发国代码（ISO 3166-1 或 ICAO 9303）。",
                    details={"code": state[:3], "length": len(state)},
                )
            )
    return Document(
        kind=KIND_PASSPORT,
        number=number,
        source="number",
        issuing_state=state,
        extra={"layout": None},
        problems=tuple(problems),
        raw=number,
    )
